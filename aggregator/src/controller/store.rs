//! A watch cache that converts each object once, when it arrives, and holds only the
//! converted value: a Node becomes a small `NodeInfo`, a NodeTopology (watched as an
//! untyped object) becomes the typed one or is set aside as malformed.
//!
//! kube-runtime's reflector store would hold every watched object whole and leave the
//! conversion to every recompute; at 5,000 NodeTopologies that is both the larger cache
//! and 5,000 conversions per recompute. This store follows the same watcher protocol
//! (a re-list replaces the contents atomically at `InitDone`), so nothing is lost.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// One object as the watcher delivered it, converted.
#[derive(Debug)]
pub struct Converted<T> {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.resourceVersion`: tells a re-listed, unchanged object from a new one.
    pub version: String,
    /// The value, or why the object could not be read.
    pub value: Result<T, String>,
}

/// What the store says about one put.
#[derive(Debug, PartialEq, Eq)]
pub enum Put {
    /// Stored (changed or not).
    Stored,
    /// Malformed, seen for the first time at this resourceVersion: log and count it.
    NewlyMalformed(String),
    /// Malformed, already reported at this resourceVersion.
    StillMalformed,
}

/// Converted objects by name, shared by the watch task (writer) and the controller
/// (reader).
#[derive(Debug)]
pub struct Store<T> {
    inner: Mutex<Inner<T>>,
    changed: Arc<Notify>,
    same: fn(&T, &T) -> bool,
}

#[derive(Debug)]
struct Inner<T> {
    items: BTreeMap<String, Entry<T>>,
    /// name → resourceVersion of each object that did not convert.
    malformed: BTreeMap<String, String>,
    /// During a (re-)list: what it delivered so far.
    relist: Option<Relist<T>>,
    ready: bool,
}

#[derive(Debug)]
struct Entry<T> {
    version: String,
    value: T,
}

#[derive(Debug)]
struct Relist<T> {
    items: BTreeMap<String, Entry<T>>,
    malformed: BTreeMap<String, String>,
}

impl<T: Clone> Store<T> {
    /// An empty store that wakes `changed` (one permit) whenever its contents change.
    /// `same` tells two values apart: a new resourceVersion whose value is `same` as the
    /// old one (a Node heartbeat that changes nothing the view reads) does not wake it.
    pub fn new(changed: Arc<Notify>, same: fn(&T, &T) -> bool) -> Self {
        Store {
            inner: Mutex::new(Inner {
                items: BTreeMap::new(),
                malformed: BTreeMap::new(),
                relist: None,
                ready: false,
            }),
            changed,
            same,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        // A panic while holding the lock leaves plain data behind, still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The watcher (re)started a list: collect until [`Store::finish_relist`].
    pub fn begin_relist(&self) {
        self.lock().relist = Some(Relist {
            items: BTreeMap::new(),
            malformed: BTreeMap::new(),
        });
    }

    /// The list is complete: it replaces the contents, and the store is ready.
    pub fn finish_relist(&self) {
        let mut inner = self.lock();
        if let Some(relist) = inner.relist.take() {
            inner.items = relist.items;
            inner.malformed = relist.malformed;
        }
        inner.ready = true;
        drop(inner);
        self.changed.notify_one();
    }

    /// An object was listed (during a re-list) or added or modified (otherwise).
    pub fn put(&self, obj: Converted<T>) -> Put {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let reported = inner.malformed.get(&obj.name) == Some(&obj.version);
        let listing = inner.relist.is_some();
        let (items, malformed) = match &mut inner.relist {
            Some(r) => (&mut r.items, &mut r.malformed),
            None => (&mut inner.items, &mut inner.malformed),
        };
        match obj.value {
            Ok(value) => {
                malformed.remove(&obj.name);
                let changed = items.get(&obj.name).is_none_or(|old| {
                    old.version != obj.version && !(self.same)(&old.value, &value)
                });
                items.insert(
                    obj.name,
                    Entry {
                        version: obj.version,
                        value,
                    },
                );
                drop(guard);
                if !listing && changed {
                    self.changed.notify_one();
                }
                Put::Stored
            }
            Err(why) => {
                // A newer version that does not convert replaces the older good one: the
                // view must not go on using what the object no longer says.
                let removed = items.remove(&obj.name).is_some();
                malformed.insert(obj.name, obj.version);
                drop(guard);
                if removed && !listing {
                    self.changed.notify_one();
                }
                if reported {
                    Put::StillMalformed
                } else {
                    Put::NewlyMalformed(why)
                }
            }
        }
    }

    /// An object was deleted.
    pub fn delete(&self, name: &str) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let (items, malformed) = match &mut inner.relist {
            Some(r) => (&mut r.items, &mut r.malformed),
            None => (&mut inner.items, &mut inner.malformed),
        };
        let removed = items.remove(name).is_some();
        malformed.remove(name);
        let listing = inner.relist.is_some();
        drop(guard);
        if removed && !listing {
            self.changed.notify_one();
        }
    }

    /// True once the first list completed.
    pub fn is_ready(&self) -> bool {
        self.lock().ready
    }

    /// Every value, in name order (a copy: the computation runs without the lock).
    pub fn snapshot(&self) -> Vec<T> {
        self.lock()
            .items
            .values()
            .map(|e| e.value.clone())
            .collect()
    }

    /// Objects held.
    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// Objects currently set aside as malformed.
    pub fn malformed_len(&self) -> usize {
        self.lock().malformed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (Store<u32>, Arc<Notify>) {
        let n = Arc::new(Notify::new());
        (Store::new(n.clone(), |a, b| a == b), n)
    }

    fn ok(name: &str, version: &str, v: u32) -> Converted<u32> {
        Converted {
            name: name.into(),
            version: version.into(),
            value: Ok(v),
        }
    }

    fn bad(name: &str, version: &str) -> Converted<u32> {
        Converted {
            name: name.into(),
            version: version.into(),
            value: Err("bad".into()),
        }
    }

    /// True when a permit is waiting (the controller would wake).
    fn woke(n: &Notify) -> bool {
        let fut = n.notified();
        let mut fut = std::pin::pin!(fut);
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        fut.as_mut().poll(&mut cx).is_ready()
    }

    use std::future::Future;

    #[test]
    fn a_list_replaces_the_contents_at_once() {
        let (s, n) = store();
        s.begin_relist();
        s.put(ok("a", "1", 1));
        s.put(ok("b", "1", 2));
        assert!(!s.is_ready());
        assert_eq!(s.len(), 0, "nothing visible before InitDone");
        assert!(!woke(&n));
        s.finish_relist();
        assert!(s.is_ready());
        assert!(woke(&n));
        assert_eq!(s.snapshot(), vec![1, 2]);

        // A re-list without `b`: `b` is gone after it, not before.
        s.begin_relist();
        s.put(ok("a", "1", 1));
        assert_eq!(s.len(), 2);
        s.finish_relist();
        assert_eq!(s.snapshot(), vec![1]);
        assert!(s.is_ready());
    }

    #[test]
    fn changes_wake_and_no_ops_do_not() {
        let (s, n) = store();
        s.begin_relist();
        s.finish_relist();
        assert!(woke(&n));
        s.put(ok("a", "1", 1));
        assert!(woke(&n));
        s.put(ok("a", "1", 1));
        assert!(!woke(&n), "same resourceVersion");
        s.put(ok("a", "2", 1));
        assert!(!woke(&n), "new version, same value");
        s.put(ok("a", "3", 5));
        assert!(woke(&n));
        s.delete("a");
        assert!(woke(&n));
        s.delete("a");
        assert!(!woke(&n));
    }

    #[test]
    fn malformed_is_reported_once_per_version() {
        let (s, n) = store();
        s.begin_relist();
        s.finish_relist();
        let _ = woke(&n);
        s.put(ok("a", "1", 1));
        let _ = woke(&n);
        assert_eq!(s.put(bad("a", "2")), Put::NewlyMalformed("bad".into()));
        assert!(woke(&n), "the good version is withdrawn");
        assert_eq!(s.len(), 0);
        assert_eq!(s.malformed_len(), 1);
        // A re-list delivers the same bad version: not reported again.
        s.begin_relist();
        assert_eq!(s.put(bad("a", "2")), Put::StillMalformed);
        s.finish_relist();
        assert_eq!(s.malformed_len(), 1);
        assert_eq!(s.put(bad("a", "3")), Put::NewlyMalformed("bad".into()));
        s.put(ok("a", "4", 7));
        assert_eq!(s.malformed_len(), 0);
        assert_eq!(s.snapshot(), vec![7]);
        s.put(bad("b", "1"));
        s.delete("b");
        assert_eq!(s.malformed_len(), 0);
    }
}
