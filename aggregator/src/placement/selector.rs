//! Label selectors in the string form of `kubectl -l` ("app=db,tier!=cache").
//!
//! The grammar is Kubernetes' (`k8s.io/apimachinery/pkg/labels`): comma-separated
//! requirements `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)` and `k notin (a,b)`,
//! with whitespace allowed around every token. Keys and values are checked as Kubernetes
//! checks labels. The differences: an empty selector is an error (Kubernetes reads it
//! as "everything", but a pod that sets the annotation to "" asked for something we
//! cannot read); the `>`/`<` operators are not supported; and a key or value spelled
//! `in` or `notin` is read by its position, where Kubernetes' lexer refuses it.

use std::collections::BTreeMap;
use std::fmt;

use super::quantity::shorten;

/// The longest selector accepted, in bytes: bounds the work and memory a hostile
/// annotation can cost.
const MAX_BYTES: usize = 4096;

/// The most requirements a selector may have.
const MAX_REQUIREMENTS: usize = 64;

/// The longest label name or value, in characters (Kubernetes' limit).
const MAX_NAME_CHARS: usize = 63;

/// The longest label key prefix (a DNS subdomain), in characters.
const MAX_PREFIX_CHARS: usize = 253;

/// The example shown with a syntax error.
const EXAMPLE: &str = "(e.g. app=db,tier!=cache)";

/// A parsed label selector: every requirement must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

/// One requirement of a selector.
///
/// The value lists of `In` and `NotIn` are sorted and without duplicates once parsed,
/// so two selectors that mean the same set of values compare equal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// `key=value` or `key==value`.
    Equals(String, String),
    /// `key!=value` (also true when the key is absent).
    NotEquals(String, String),
    /// `key`: the key is present, whatever its value.
    Exists(String),
    /// `!key`: the key is absent.
    NotExists(String),
    /// `key in (a,b)`: the key is present with one of these values.
    In(String, Vec<String>),
    /// `key notin (a,b)`: the key is absent, or present with none of these values.
    NotIn(String, Vec<String>),
}

impl Selector {
    /// Parses the `kubectl -l` form.
    ///
    /// Errors are short sentences that quote the selector (shortened) and say what is
    /// wrong: "empty selector", too long, too many requirements, a bad key or value, or
    /// a token where another was expected.
    pub fn parse(s: &str) -> Result<Selector, String> {
        if s.len() > MAX_BYTES {
            return Err(format!(
                "{} is too long for a label selector ({} bytes, at most {MAX_BYTES})",
                shorten(s),
                s.len()
            ));
        }
        let tokens = tokenize(s);
        if tokens.is_empty() {
            return Err("empty selector".into());
        }
        Parser { tokens, next: 0 }
            .selector()
            .map_err(|detail| format!("{} is not a label selector: {detail} {EXAMPLE}", shorten(s)))
    }

    /// True when `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// The requirements, in the order written.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }
}

impl Requirement {
    /// True when `labels` satisfy this requirement, with Kubernetes' semantics: the
    /// negative forms (`!=`, `notin`) hold when the key is absent.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Requirement::Equals(key, value) => labels.get(key) == Some(value),
            Requirement::NotEquals(key, value) => labels.get(key) != Some(value),
            Requirement::Exists(key) => labels.contains_key(key),
            Requirement::NotExists(key) => !labels.contains_key(key),
            Requirement::In(key, values) => labels.get(key).is_some_and(|v| values.contains(v)),
            Requirement::NotIn(key, values) => !labels.get(key).is_some_and(|v| values.contains(v)),
        }
    }

    /// The label key this requirement is about.
    pub fn key(&self) -> &str {
        match self {
            Requirement::Equals(key, _)
            | Requirement::NotEquals(key, _)
            | Requirement::Exists(key)
            | Requirement::NotExists(key)
            | Requirement::In(key, _)
            | Requirement::NotIn(key, _) => key,
        }
    }
}

/// The canonical form: no spaces but around `in`/`notin`, `=` for `==`, value lists
/// sorted. It parses back to an equal selector.
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, requirement) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{requirement}")?;
        }
        Ok(())
    }
}

/// One requirement in the canonical form of [`Selector`]'s `Display`.
impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requirement::Equals(key, value) => write!(f, "{key}={value}"),
            Requirement::NotEquals(key, value) => write!(f, "{key}!={value}"),
            Requirement::Exists(key) => f.write_str(key),
            Requirement::NotExists(key) => write!(f, "!{key}"),
            Requirement::In(key, values) => write!(f, "{key} in ({})", values.join(",")),
            Requirement::NotIn(key, values) => write!(f, "{key} notin ({})", values.join(",")),
        }
    }
}

/// A lexical token of a selector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token<'a> {
    /// A run of characters that are neither whitespace nor one of `=!(),`: a key, a
    /// value, or the operators `in`/`notin` (which the parser tells apart by position).
    Word(&'a str),
    /// `=`
    Equals,
    /// `==`
    DoubleEquals,
    /// `!=`
    NotEquals,
    /// `!` not followed by `=`
    Not,
    /// `(`
    Open,
    /// `)`
    Close,
    /// `,`
    Comma,
}

impl fmt::Display for Token<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Word(w) => f.write_str(&shorten(w)),
            Token::Equals => f.write_str("'='"),
            Token::DoubleEquals => f.write_str("'=='"),
            Token::NotEquals => f.write_str("'!='"),
            Token::Not => f.write_str("'!'"),
            Token::Open => f.write_str("'('"),
            Token::Close => f.write_str("')'"),
            Token::Comma => f.write_str("','"),
        }
    }
}

/// The whitespace Kubernetes' lexer skips.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// True for the characters that end a word.
fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',')
}

/// Splits `s` into tokens. Every character is whitespace, a symbol or part of a word,
/// so this cannot fail; bad words are caught when checked as keys or values.
fn tokenize(s: &str) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        let (token, len) = match c {
            c if is_space(c) => {
                rest = &rest[c.len_utf8()..];
                continue;
            }
            '=' if rest.starts_with("==") => (Token::DoubleEquals, 2),
            '=' => (Token::Equals, 1),
            '!' if rest.starts_with("!=") => (Token::NotEquals, 2),
            '!' => (Token::Not, 1),
            '(' => (Token::Open, 1),
            ')' => (Token::Close, 1),
            ',' => (Token::Comma, 1),
            _ => {
                let len = rest
                    .find(|c: char| is_space(c) || is_special(c))
                    .unwrap_or(rest.len());
                (Token::Word(&rest[..len]), len)
            }
        };
        tokens.push(token);
        rest = &rest[len..];
    }
    tokens
}

/// A recursive-descent parser over the tokens. Its errors are details, without the
/// selector, which [`Selector::parse`] adds.
struct Parser<'a> {
    tokens: Vec<Token<'a>>,
    next: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<Token<'a>> {
        self.tokens.get(self.next).copied()
    }

    fn bump(&mut self) -> Option<Token<'a>> {
        let token = self.peek();
        if token.is_some() {
            self.next += 1;
        }
        token
    }

    /// `requirement (',' requirement)*`, to the end.
    fn selector(mut self) -> Result<Selector, String> {
        let mut requirements = Vec::new();
        loop {
            if requirements.len() == MAX_REQUIREMENTS {
                return Err(format!("more than {MAX_REQUIREMENTS} requirements"));
            }
            let requirement = self.requirement()?;
            let next = self.bump();
            if let Some(other) = next.filter(|t| *t != Token::Comma) {
                return Err(format!(
                    "expected ',' or the end after {}, found {other}",
                    shorten(&requirement.to_string())
                ));
            }
            requirements.push(requirement);
            if next.is_none() {
                return Ok(Selector { requirements });
            }
        }
    }

    /// One requirement.
    fn requirement(&mut self) -> Result<Requirement, String> {
        let key = match self.bump() {
            Some(Token::Not) => {
                return match self.bump() {
                    Some(Token::Word(word)) => Ok(Requirement::NotExists(key(word)?)),
                    Some(other) => Err(format!("expected a label key after '!', found {other}")),
                    None => Err("expected a label key after '!', found the end".into()),
                };
            }
            Some(Token::Word(word)) => key(word)?,
            Some(other) => return Err(format!("expected a label key, found {other}")),
            None => return Err("expected a label key, found the end".into()),
        };
        match self.peek() {
            None | Some(Token::Comma) => Ok(Requirement::Exists(key)),
            Some(Token::Equals | Token::DoubleEquals) => {
                self.bump();
                Ok(Requirement::Equals(key, self.exact_value()?))
            }
            Some(Token::NotEquals) => {
                self.bump();
                Ok(Requirement::NotEquals(key, self.exact_value()?))
            }
            Some(Token::Word("in")) => {
                self.bump();
                Ok(Requirement::In(key, self.value_list()?))
            }
            Some(Token::Word("notin")) => {
                self.bump();
                Ok(Requirement::NotIn(key, self.value_list()?))
            }
            Some(other) => Err(format!(
                "expected =, !=, in or notin after {}, found {other}",
                shorten(&key)
            )),
        }
    }

    /// The value after `=`, `==` or `!=`: a word, or nothing (the empty value).
    fn exact_value(&mut self) -> Result<String, String> {
        match self.peek() {
            None | Some(Token::Comma) => Ok(String::new()),
            Some(Token::Word(word)) => {
                self.bump();
                value(word)
            }
            Some(other) => Err(format!("expected a label value, found {other}")),
        }
    }

    /// `'(' value? (',' value?)* ')'`, as Kubernetes reads it: an empty entry is the
    /// empty value, so `()` is `("")`. Sorted, without duplicates.
    fn value_list(&mut self) -> Result<Vec<String>, String> {
        match self.bump() {
            Some(Token::Open) => {}
            Some(other) => return Err(format!("expected '(', found {other}")),
            None => return Err("expected '(', found the end".into()),
        }
        let mut values = Vec::new();
        // True right after '(' or ',': a value may come, and if none does, the entry is
        // the empty value.
        let mut expecting_value = true;
        loop {
            match self.bump() {
                Some(Token::Word(word)) if expecting_value => {
                    values.push(value(word)?);
                    expecting_value = false;
                }
                Some(Token::Comma) => {
                    if expecting_value {
                        values.push(String::new());
                    }
                    expecting_value = true;
                }
                Some(Token::Close) => {
                    if expecting_value {
                        values.push(String::new());
                    }
                    break;
                }
                Some(other) => {
                    return Err(format!("expected a label value, ',' or ')', found {other}"));
                }
                None => return Err("expected ')', found the end".into()),
            }
        }
        values.sort_unstable();
        values.dedup();
        Ok(values)
    }
}

/// Checks a label key: an optional DNS-subdomain prefix and '/', then a name.
fn key(word: &str) -> Result<String, String> {
    let (prefix, name) = match word.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, word),
    };
    if prefix.is_some_and(|p| !is_dns_subdomain(p)) {
        return Err(format!(
            "label key {} must have a DNS subdomain before '/' \
             (lowercase letters, digits, '-' and '.', at most {MAX_PREFIX_CHARS})",
            shorten(word)
        ));
    }
    if name.contains('/') {
        return Err(format!("label key {} has more than one '/'", shorten(word)));
    }
    if name.is_empty() {
        return Err(format!("label key {} has an empty name", shorten(word)));
    }
    check_name("label key", word, name)?;
    Ok(word.to_owned())
}

/// Checks a label value: empty, or a name.
fn value(word: &str) -> Result<String, String> {
    check_name("label value", word, word)?;
    Ok(word.to_owned())
}

/// Checks `name` (part of `word`) as a label name or value: at most 63 characters,
/// letters and digits at both ends, `-_.` also inside. The empty name passes (only
/// a key's caller rejects it).
fn check_name(what: &str, word: &str, name: &str) -> Result<(), String> {
    if name.chars().nth(MAX_NAME_CHARS).is_some() {
        return Err(format!(
            "{what} {} is longer than {MAX_NAME_CHARS} characters",
            shorten(word)
        ));
    }
    let bytes = name.as_bytes();
    let inside_ok = bytes
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    let ends_ok = match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric(),
        _ => true,
    };
    if inside_ok && ends_ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {} must be letters, digits, '-', '_' or '.', \
             with a letter or digit at each end",
            shorten(word)
        ))
    }
}

/// RFC 1123 subdomain, as Kubernetes checks a label key's prefix: dot-separated parts
/// of lowercase letters, digits and '-', each starting and ending with a letter or
/// digit, at most 253 characters in all.
fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_PREFIX_CHARS
        && s.split('.').all(|part| {
            let bytes = part.as_bytes();
            let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
            bytes.first().is_some_and(alnum)
                && bytes.last().is_some_and(alnum)
                && bytes.iter().all(|b| alnum(b) || *b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(s: &str) -> Selector {
        Selector::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    fn err(s: &str) -> String {
        match Selector::parse(s) {
            Ok(sel) => panic!("{s:?} should not parse, got {sel:?}"),
            Err(e) => e,
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn s(x: &str) -> String {
        x.to_owned()
    }

    #[test]
    fn parses_every_form() {
        use Requirement::*;
        let cases: &[(&str, Requirement)] = &[
            ("app=db", Equals(s("app"), s("db"))),
            ("app==db", Equals(s("app"), s("db"))),
            ("app!=db", NotEquals(s("app"), s("db"))),
            ("app", Exists(s("app"))),
            ("!app", NotExists(s("app"))),
            ("env in (a,b)", In(s("env"), vec![s("a"), s("b")])),
            ("env notin (a,b)", NotIn(s("env"), vec![s("a"), s("b")])),
            ("k=", Equals(s("k"), s(""))),
            ("k!=", NotEquals(s("k"), s(""))),
            ("k in ()", In(s("k"), vec![s("")])),
            ("k in (a,)", In(s("k"), vec![s(""), s("a")])),
            ("k in (,a)", In(s("k"), vec![s(""), s("a")])),
            ("k notin (b,a,b)", NotIn(s("k"), vec![s("a"), s("b")])),
            ("k in (in,notin)", In(s("k"), vec![s("in"), s("notin")])),
            ("example.com/app=db", Equals(s("example.com/app"), s("db"))),
            (
                "a.b-c/X_y.z=V-1_2.3",
                Equals(s("a.b-c/X_y.z"), s("V-1_2.3")),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(
                ok(text).requirements(),
                std::slice::from_ref(want),
                "{text}"
            );
        }
    }

    #[test]
    fn whitespace_around_tokens() {
        let sel = ok("  app = db ,\ttier != cache ,env in ( a , b ) , ! gone,x\n");
        assert_eq!(sel.to_string(), "app=db,tier!=cache,env in (a,b),!gone,x");
        assert_eq!(ok("env in(a)").to_string(), "env in (a)");
    }

    #[test]
    fn several_requirements_keep_their_order() {
        let sel = ok("tier!=cache,app=db");
        assert_eq!(
            sel.requirements(),
            [
                Requirement::NotEquals(s("tier"), s("cache")),
                Requirement::Equals(s("app"), s("db")),
            ]
        );
        assert_eq!(sel.requirements()[0].key(), "tier");
    }

    #[test]
    fn empty_is_an_error() {
        assert_eq!(err(""), "empty selector");
        assert_eq!(err("  \t"), "empty selector");
    }

    #[test]
    fn syntax_errors() {
        for bad in [
            ",",
            "a=b,",
            ",a=b",
            "a=b,,c",
            "=b",
            "!",
            "!a=b",
            "!=b",
            "a b",
            "a in b",
            "a in",
            "a in (b",
            "a in (b c)",
            "a in (b))",
            "a in ((b))",
            "a notin",
            "a=b=c",
            "a = = b",
            "a=(b)",
            "a=b!",
            "(a)",
            "a,(",
            "a in (b,=)",
            "!!a",
            "a=b c",
        ] {
            let e = err(bad);
            assert!(
                e.starts_with(&format!("{bad:?} is not a label selector: ")),
                "{bad:?}: {e}"
            );
            assert!(e.ends_with("(e.g. app=db,tier!=cache)"), "{bad:?}: {e}");
        }
        assert_eq!(
            err("a b"),
            "\"a b\" is not a label selector: expected =, !=, in or notin after \"a\", \
             found \"b\" (e.g. app=db,tier!=cache)"
        );
        assert_eq!(
            err("a=b,"),
            "\"a=b,\" is not a label selector: expected a label key, found the end \
             (e.g. app=db,tier!=cache)"
        );
    }

    #[test]
    fn bad_keys_and_values() {
        let long = "a".repeat(64);
        let long_key = format!("{long}=x");
        let long_value = format!("x={long}");
        let long_prefix = format!("{}/x=y", "a".repeat(254));
        for bad in [
            "-a=b",
            "a-=b",
            "_a",
            "a.",
            "a*b=c",
            "a/b/c=d",
            "/a=b",
            "a/=b",
            "Example.com/a=b",
            "ex_ample.com/a=b",
            "-ex.com/a",
            "ex..com/a",
            "ex.com-/a",
            "a=-b",
            "a=b-",
            "a=b_",
            "a=.",
            "a in (b,-c)",
            "a=b/c",
            "é=b",
            "a=é",
            "a>1",
            "a<1",
            "k=v\u{0}",
            &long_key,
            &long_value,
            &long_prefix,
        ] {
            let e = err(bad);
            assert!(
                e.contains("label key") || e.contains("label value"),
                "{bad:?}: {e}"
            );
        }
        // The limits themselves are fine.
        let max = "a".repeat(63);
        ok(&format!("{max}={max}"));
        ok(&format!("{}/{max}={max}", "a".repeat(253)));
        ok("1=2");
    }

    #[test]
    fn bounded_input() {
        let too_long = format!("a={}", "b,a=".repeat(1024));
        assert!(too_long.len() > MAX_BYTES);
        let e = err(&too_long);
        assert!(e.contains("too long") && e.contains("at most 4096"), "{e}");

        let sixty_four = (0..64)
            .map(|i| format!("k{i}"))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(ok(&sixty_four).requirements().len(), 64);
        let sixty_five = format!("{sixty_four},k64");
        assert!(err(&sixty_five).contains("more than 64 requirements"));
    }

    #[test]
    fn match_semantics() {
        let db = labels(&[("app", "db"), ("tier", "backend")]);
        let empty = labels(&[]);
        let check = |sel: &str, l: &BTreeMap<String, String>| ok(sel).matches(l);

        assert!(check("app=db", &db));
        assert!(!check("app=web", &db));
        assert!(!check("app=db", &empty));

        assert!(check("app!=web", &db));
        assert!(!check("app!=db", &db));
        // Absent keys satisfy the negative forms, as in Kubernetes.
        assert!(check("app!=db", &empty));
        assert!(check("missing!=x", &db));
        assert!(check("missing notin (x)", &db));
        assert!(check("app notin (web,cache)", &db));
        assert!(!check("app notin (db,cache)", &db));

        assert!(check("app in (web,db)", &db));
        assert!(!check("app in (web)", &db));
        assert!(!check("missing in (x)", &db));

        assert!(check("app", &db));
        assert!(!check("missing", &db));
        assert!(check("!missing", &db));
        assert!(!check("!app", &db));

        // Empty values are values: "k=" wants the key present with "".
        let blank = labels(&[("k", "")]);
        assert!(check("k=", &blank));
        assert!(!check("k=", &empty));
        assert!(check("k in ()", &blank));

        // Every requirement must hold.
        assert!(check("app=db,tier=backend,!gone", &db));
        assert!(!check("app=db,tier=frontend", &db));
    }

    #[test]
    fn display_is_canonical() {
        assert_eq!(
            ok("app == db , tier!=cache,env in (b, a, b)").to_string(),
            "app=db,tier!=cache,env in (a,b)"
        );
        assert_eq!(
            ok("!a, b notin (x), c=, d!=").to_string(),
            "!a,b notin (x),c=,d!="
        );
        assert_eq!(ok("k in ()").to_string(), "k in ()");
        assert_eq!(ok("k in (,a)").to_string(), "k in (,a)");
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "app=db",
            "app==db,tier!=cache",
            "  env in (b,a) , x notin ( , y ) ,!z,w",
            "k=,j!=",
            "k in ()",
            "example.com/a-b.c_d=E.f-G",
            "k in (in,notin),in=notin",
        ] {
            let sel = ok(text);
            assert_eq!(ok(&sel.to_string()), sel, "{text}");
        }
    }

    /// A valid label name or value (non-empty).
    fn name() -> impl Strategy<Value = String> {
        "[A-Za-z0-9]([-A-Za-z0-9_.]{0,10}[A-Za-z0-9])?"
    }

    fn key_strategy() -> impl Strategy<Value = String> {
        (
            proptest::option::of("[a-z0-9]([-a-z0-9]{0,5}[a-z0-9])?(\\.[a-z0-9]{1,4}){0,2}"),
            name(),
        )
            .prop_map(|(prefix, name)| match prefix {
                Some(p) => format!("{p}/{name}"),
                None => name,
            })
    }

    fn value_strategy() -> impl Strategy<Value = String> {
        prop_oneof![Just(String::new()), name()]
    }

    /// A sorted, deduplicated value list, as parsed.
    fn values_strategy() -> impl Strategy<Value = Vec<String>> {
        proptest::collection::vec(value_strategy(), 1..4).prop_map(|mut v| {
            v.sort_unstable();
            v.dedup();
            v
        })
    }

    fn requirement_strategy() -> impl Strategy<Value = Requirement> {
        prop_oneof![
            (key_strategy(), value_strategy()).prop_map(|(k, v)| Requirement::Equals(k, v)),
            (key_strategy(), value_strategy()).prop_map(|(k, v)| Requirement::NotEquals(k, v)),
            key_strategy().prop_map(Requirement::Exists),
            key_strategy().prop_map(Requirement::NotExists),
            (key_strategy(), values_strategy()).prop_map(|(k, v)| Requirement::In(k, v)),
            (key_strategy(), values_strategy()).prop_map(|(k, v)| Requirement::NotIn(k, v)),
        ]
    }

    proptest! {
        /// No string makes the parser panic.
        #[test]
        fn arbitrary_strings_never_panic(text in ".*") {
            if let Ok(sel) = Selector::parse(&text) {
                let _ = sel.matches(&BTreeMap::new());
            }
        }

        /// Strings made of selector characters, which reach every branch, never panic.
        #[test]
        fn selector_like_strings_never_panic(text in "[-a-c/.=!(), in_]{0,40}") {
            let _ = Selector::parse(&text);
        }

        /// Any selector's canonical form parses back to it.
        #[test]
        fn generated_selectors_round_trip(
            requirements in proptest::collection::vec(requirement_strategy(), 1..6),
        ) {
            let sel = Selector { requirements };
            let text = sel.to_string();
            prop_assert_eq!(Selector::parse(&text), Ok(sel), "{}", text);
        }
    }
}
