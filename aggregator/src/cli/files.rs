//! Reading what `kubectl get nodetopologies -o json` and `kubectl get nodes -o json`
//! print (a `v1` `List`, or an `XxxList`), from a file or stdin, as JSON or YAML.
//!
//! The file is read through a bounded reader, then parsed as a stream: each item is
//! taken as a `serde_json::Value` and turned into its type on its own, so one broken item
//! costs a warning (and memory for one item), never the whole file.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Node;
use serde::de::{DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::exit::Failure;
use super::warnings::Warnings;
use crate::api::NodeTopology;
use crate::cluster::input::shorten;

/// Largest input accepted: 5,000 NodeTopologies with 32 links each are about 60 MiB.
pub const MAX_INPUT_BYTES: u64 = 256 * 1024 * 1024;

/// Where a list comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Standard input (`-`).
    Stdin,
    /// A file.
    File(PathBuf),
}

impl Input {
    /// `-` is stdin, anything else a path.
    pub fn from_path(path: &Path) -> Input {
        if path.as_os_str() == "-" {
            Input::Stdin
        } else {
            Input::File(path.to_path_buf())
        }
    }

    /// The name used in messages.
    pub fn label(&self) -> String {
        match self {
            Input::Stdin => "stdin".to_owned(),
            Input::File(p) => p.display().to_string(),
        }
    }

    /// The whole input, at most [`MAX_INPUT_BYTES`]: 66 when it cannot be opened or read,
    /// 65 when it is larger.
    pub fn read(&self) -> Result<Vec<u8>, Failure> {
        let label = self.label();
        match self {
            Input::Stdin => read_bounded(std::io::stdin().lock(), &label),
            Input::File(path) => {
                let file = File::open(path)
                    .map_err(|e| Failure::no_input(format!("{label}: cannot open: {e}")))?;
                // A regular file's size is known up front: refuse it before reading.
                if let Ok(meta) = file.metadata()
                    && meta.is_file()
                    && meta.len() > MAX_INPUT_BYTES
                {
                    return Err(too_large(&label));
                }
                read_bounded(file, &label)
            }
        }
    }
}

fn too_large(label: &str) -> Failure {
    Failure::data(format!(
        "{label}: larger than {} MiB, refused",
        MAX_INPUT_BYTES / (1024 * 1024)
    ))
}

fn read_bounded(reader: impl Read, label: &str) -> Result<Vec<u8>, Failure> {
    let mut buf = Vec::new();
    reader
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Failure::no_input(format!("{label}: cannot read: {e}")))?;
    if buf.len() as u64 > MAX_INPUT_BYTES {
        return Err(too_large(label));
    }
    Ok(buf)
}

/// A kind of list item: what it must say it is, and how to read it.
pub trait Item: DeserializeOwned {
    /// `kind` an item must have (when it has one).
    const KIND: &'static str;
    /// `apiVersion` an item must have (when it has one).
    const API_VERSION: &'static str;
    /// The `kubectl get` resource name, for messages.
    const RESOURCE: &'static str;

    /// Fills in what the API server may leave out but the type requires.
    fn prepare(_object: &mut Map<String, Value>) {}
}

impl Item for NodeTopology {
    const KIND: &'static str = "NodeTopology";
    const API_VERSION: &'static str = crate::api::API_VERSION;
    const RESOURCE: &'static str = "nodetopologies";

    // The agent writes only the status, so an object may come without a spec; the spec
    // is empty by design, and its absence says nothing wrong about the report.
    fn prepare(object: &mut Map<String, Value>) {
        if object.get("spec").is_none_or(Value::is_null) {
            object.insert("spec".to_owned(), Value::Object(Map::new()));
        }
    }
}

impl Item for Node {
    const KIND: &'static str = "Node";
    const API_VERSION: &'static str = "v1";
    const RESOURCE: &'static str = "nodes";
}

impl Item for k8s_openapi::api::core::v1::Pod {
    const KIND: &'static str = "Pod";
    const API_VERSION: &'static str = "v1";
    const RESOURCE: &'static str = "pods";
}

/// The items of one list that could be read, and the warnings about the rest.
#[derive(Debug)]
pub struct Items<T> {
    /// Items read, in list order.
    pub items: Vec<T>,
    /// Items skipped (each has a warning).
    pub skipped: u64,
    /// One line per skipped item, bounded.
    pub warnings: Warnings,
    /// Items seen, read or not.
    seen: u64,
    /// The `kind` of the first item of another kind, and how many there were: a list of
    /// nothing but other kinds is the wrong file, not a list with bad items.
    other_kind: Option<String>,
    other_kinds: u64,
}

impl<T: Item> Items<T> {
    /// Nothing read yet from `source`.
    pub fn new(source: &str) -> Self {
        Items {
            items: Vec::new(),
            skipped: 0,
            warnings: Warnings::new(source),
            seen: 0,
            other_kind: None,
            other_kinds: 0,
        }
    }

    /// Reads the `index`th item on its own; a bad one is skipped with a warning.
    pub fn add(&mut self, index: usize, value: Value) {
        self.seen += 1;
        if let Some(kind) = value.get("kind").and_then(Value::as_str)
            && kind != T::KIND
        {
            self.other_kinds += 1;
            self.other_kind.get_or_insert_with(|| shorten(kind));
        }
        match convert::<T>(index, value) {
            Ok(item) => self.items.push(item),
            Err(why) => {
                self.skipped += 1;
                self.warnings.push(format!("{why}, skipped"));
            }
        }
    }
}

fn convert<T: Item>(index: usize, value: Value) -> Result<T, String> {
    let Value::Object(mut object) = value else {
        return Err(format!("item {index}: not an object"));
    };
    let name = object
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(shorten);
    let what = match &name {
        Some(n) => format!("item {index} ({n})"),
        None => format!("item {index}"),
    };
    if let Some(kind) = object.get("kind")
        && kind.as_str() != Some(T::KIND)
    {
        return Err(format!("{what}: kind {}, not {}", shown(kind), T::KIND));
    }
    if let Some(version) = object.get("apiVersion")
        && version.as_str() != Some(T::API_VERSION)
    {
        return Err(format!(
            "{what}: apiVersion {}, not {}",
            shown(version),
            T::API_VERSION
        ));
    }
    if name.is_none() {
        return Err(format!("{what}: no metadata.name"));
    }
    T::prepare(&mut object);
    serde_json::from_value(Value::Object(object)).map_err(|e| format!("{what}: {e}"))
}

/// A value from the input for a message: a string as it is, anything else as JSON;
/// shortened either way.
fn shown(v: &Value) -> String {
    match v.as_str() {
        Some(s) => shorten(s),
        None => shorten(&v.to_string()),
    }
}

/// Reads `input` as a list of `T`: 66 when it cannot be read, 65 when it is not a list.
pub fn read_list<T: Item>(input: &Input) -> Result<Items<T>, Failure> {
    let bytes = input.read()?;
    parse_list(&bytes, &input.label())
}

/// Parses `bytes` (JSON when the text starts with `{`, else YAML) as a list of `T`.
pub fn parse_list<T: Item>(bytes: &[u8], label: &str) -> Result<Items<T>, Failure> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    let mut items = Items::<T>::new(label);
    let seed = ListSeed {
        items: &mut items,
        _item: PhantomData,
    };
    let bad = |e: &dyn fmt::Display| {
        Failure::data(format!(
            "{label}: not a readable list (expected what `kubectl get {} -o json` prints): {e}",
            T::RESOURCE
        ))
    };
    let head = if first == Some(&b'{') {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let head = seed.deserialize(&mut de).map_err(|e| bad(&e))?;
        de.end().map_err(|e| bad(&e))?;
        head
    } else {
        let text = std::str::from_utf8(bytes).map_err(|e| bad(&e))?;
        seed.deserialize(serde_norway::Deserializer::from_str(text))
            .map_err(|e| bad(&e))?
    };
    check_head::<T>(&head, label)?;
    if let Some(kind) = &items.other_kind
        && items.other_kinds == items.seen
    {
        return Err(Failure::data(format!(
            "{label}: holds {kind} objects, not {}: expected what `kubectl get {} -o json` prints",
            T::KIND,
            T::RESOURCE
        )));
    }
    Ok(items)
}

/// What the list says about itself.
#[derive(Debug, Default)]
struct Head {
    kind: Option<Value>,
    has_items: bool,
}

fn check_head<T: Item>(head: &Head, label: &str) -> Result<(), Failure> {
    let expected = format!("{}List", T::KIND);
    let kind = head.kind.as_ref().and_then(Value::as_str);
    match kind {
        Some("List") => {}
        Some(k) if k == expected => {}
        Some(k) if k.ends_with("List") => {
            return Err(Failure::data(format!(
                "{label}: a {}, not a list of {} (expected `kubectl get {} -o json`)",
                shorten(k),
                T::RESOURCE,
                T::RESOURCE
            )));
        }
        _ => {
            let kind = head.kind.as_ref().map_or_else(|| "none".to_owned(), shown);
            return Err(Failure::data(format!(
                "{label}: not a List (kind {kind}); expected what `kubectl get {} -o json` prints",
                T::RESOURCE
            )));
        }
    }
    if !head.has_items {
        return Err(Failure::data(format!("{label}: a List without items")));
    }
    Ok(())
}

/// Walks the top-level object, handing each element of `items` to [`Items::add`].
struct ListSeed<'a, T> {
    items: &'a mut Items<T>,
    _item: PhantomData<T>,
}

impl<'de, T: Item> DeserializeSeed<'de> for ListSeed<'_, T> {
    type Value = Head;

    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<Head, D::Error> {
        de.deserialize_map(self)
    }
}

impl<'de, T: Item> Visitor<'de> for ListSeed<'_, T> {
    type Value = Head;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a List object with `kind` and `items`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Head, A::Error> {
        let mut head = Head::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "kind" => head.kind = Some(map.next_value()?),
                "items" if !head.has_items => {
                    map.next_value_seed(ItemsSeed {
                        items: &mut *self.items,
                        _item: PhantomData,
                    })?;
                    head.has_items = true;
                }
                "items" => return Err(serde::de::Error::duplicate_field("items")),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(head)
    }
}

/// Reads `items` one element at a time.
struct ItemsSeed<'a, T> {
    items: &'a mut Items<T>,
    _item: PhantomData<T>,
}

impl<'de, T: Item> DeserializeSeed<'de> for ItemsSeed<'_, T> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_seq(self)
    }
}

impl<'de, T: Item> Visitor<'de> for ItemsSeed<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`items` as an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while let Some(value) = seq.next_element::<Value>()? {
            self.items.add(index, value);
            index += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topologies(text: &str) -> Result<Items<NodeTopology>, Failure> {
        parse_list::<NodeTopology>(text.as_bytes(), "t.json")
    }

    #[test]
    fn reads_a_kubectl_list_and_skips_bad_items() {
        let text = r#"{"apiVersion":"v1","items":[
            {"apiVersion":"linkmeter.dev/v1alpha1","kind":"NodeTopology","metadata":{"name":"a"},"status":{"windowSeconds":300}},
            {"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}},
            {"kind":"NodeTopology","metadata":{"name":"b"},"status":{"windowSeconds":"x"}},
            {"kind":"NodeTopology","metadata":{}},
            7
        ],"kind":"List","metadata":{"resourceVersion":""}}"#;
        let items = topologies(text).expect("a list");
        assert_eq!(items.items.len(), 1);
        assert_eq!(items.items[0].metadata.name.as_deref(), Some("a"));
        assert_eq!(items.skipped, 4);
        assert_eq!(items.warnings.total(), 4);
    }

    #[test]
    fn reads_yaml() {
        let text =
            "apiVersion: v1\nkind: List\nitems:\n- kind: NodeTopology\n  metadata:\n    name: a\n";
        let items = topologies(text).expect("a list");
        assert_eq!(items.items.len(), 1);
    }

    #[test]
    fn refuses_what_is_not_a_list() {
        for text in [
            "{",
            "[]",
            r#"{"kind":"NodeTopology","metadata":{"name":"a"}}"#,
            r#"{"kind":"List","items":{}}"#,
            r#"{"kind":"List"}"#,
            r#"{"kind":"NodeList","items":[]}"#,
            r#"{"kind":"List","items":[{"kind":"Node","metadata":{"name":"a"}}]}"#,
            r#"{"kind":"List","items":[]} trailing"#,
            "just: [yaml",
            "",
        ] {
            let err = topologies(text).expect_err(text);
            assert_eq!(err.code, super::super::exit::DATA, "{text}");
            assert!(err.message.starts_with("t.json: "), "{}", err.message);
        }
    }

    #[test]
    fn typed_list_kinds_are_accepted() {
        let items = topologies(r#"{"kind":"NodeTopologyList","items":[]}"#).expect("list");
        assert!(items.items.is_empty());
    }
}
