//! The YAML config file of `run`, read as the flags it stands for.
//!
//! Keys are the long flag names (`ping-interval`, `peer`, `no-throughput`,
//! `host-proc`, `log-level`), so the file needs no schema of its own: each entry
//! becomes `--key=value` (a list becomes one flag per item, `true` on a switch becomes
//! the bare switch) and goes through the same parsers and defaults as the command
//! line. Options already given on the command line or in their environment variable
//! are skipped, so those win over the file.
//!
//! Errors are one line: a syntax error with its line and column, an unknown key with
//! the nearest valid one, a value of the wrong shape with what was expected.

use std::ffi::OsString;
use std::io::Read;
use std::path::Path;

use clap::{Arg, ArgAction, Command};
use serde_norway::Value;

/// Largest config file read (bytes); a config is a few hundred bytes.
pub const MAX_CONFIG_FILE_BYTES: u64 = 1 << 20;

/// Options a file cannot set: they choose the file or print and exit.
const NOT_IN_FILE: [&str; 3] = ["config", "help", "version"];

/// Reads the file at `path` and returns the flags it stands for, leaving out every
/// option for which `given(id)` is true. `cmd` is the (built) subcommand whose
/// options the keys name. The error is one line that starts with the file's name.
pub fn flags_from_file(
    path: &Path,
    cmd: &Command,
    given: &dyn Fn(&str) -> bool,
) -> Result<Vec<OsString>, String> {
    let name = path.display();
    let text = read_bounded(path).map_err(|e| format!("--config {name}: {e}"))?;
    flags_from_text(&text, cmd, given).map_err(|e| format!("--config {name}: {e}"))
}

fn read_bounded(path: &Path) -> Result<String, String> {
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    f.take(MAX_CONFIG_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_CONFIG_FILE_BYTES {
        return Err("larger than 1 MiB".into());
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".into())
}

/// [`flags_from_file`] on text already read.
pub fn flags_from_text(
    text: &str,
    cmd: &Command,
    given: &dyn Fn(&str) -> bool,
) -> Result<Vec<OsString>, String> {
    let doc: Value = serde_norway::from_str(text).map_err(|e| syntax_error(&e))?;
    let map = match doc {
        // An empty file, or one of comments only.
        Value::Null => return Ok(Vec::new()),
        Value::Mapping(m) => m,
        other => {
            return Err(format!(
                "expected a mapping of option names to values, found {}",
                kind(&other)
            ));
        }
    };
    let options: Vec<&Arg> = cmd
        .get_arguments()
        .filter(|a| a.get_long().is_some_and(|l| !NOT_IN_FILE.contains(&l)))
        .collect();
    let mut flags = Vec::new();
    for (key, value) in map {
        let Value::String(key) = key else {
            return Err(format!("keys must be option names, found {}", kind(&key)));
        };
        let Some(arg) = options.iter().find(|a| a.get_long() == Some(key.as_str())) else {
            return Err(unknown_key(&key, &options));
        };
        if given(arg.get_id().as_str()) {
            continue;
        }
        push_flags(&mut flags, &key, arg.get_action(), value)?;
    }
    Ok(flags)
}

/// Appends the flags for one `key: value` entry.
fn push_flags(
    flags: &mut Vec<OsString>,
    key: &str,
    action: &ArgAction,
    value: Value,
) -> Result<(), String> {
    match action {
        ArgAction::SetTrue => match value {
            Value::Bool(true) => flags.push(format!("--{key}").into()),
            Value::Bool(false) => {}
            other => {
                return Err(format!(
                    "{key}: expected true or false, found {}",
                    kind(&other)
                ));
            }
        },
        ArgAction::Append => {
            let items = match value {
                Value::Sequence(items) => items,
                single => vec![single],
            };
            for item in items {
                let text = scalar(&item).ok_or_else(|| {
                    format!(
                        "{key}: expected a list of values, found a {} in it",
                        kind(&item)
                    )
                })?;
                flags.push(format!("--{key}={text}").into());
            }
        }
        _ => {
            let text = scalar(&value)
                .ok_or_else(|| format!("{key}: expected one value, found {}", kind(&value)))?;
            flags.push(format!("--{key}={text}").into());
        }
    }
    Ok(())
}

/// A scalar as the text a flag would carry; `None` for lists, mappings and null.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// How a value reads in an error message.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// `line L column C: what`, from the YAML parser's error.
fn syntax_error(e: &serde_norway::Error) -> String {
    let msg = e.to_string();
    let first = msg.lines().next().unwrap_or("invalid YAML");
    // The parser appends its own "at line L column C"; the position leads here instead.
    let what = first.split(" at line ").next().unwrap_or(first);
    match e.location() {
        Some(at) => format!(
            "YAML syntax error at line {} column {}: {what}",
            at.line(),
            at.column()
        ),
        None => format!("YAML syntax error: {what}"),
    }
}

/// The error for a key that names no option, with the nearest one when it is close.
fn unknown_key(key: &str, options: &[&Arg]) -> String {
    let nearest = options
        .iter()
        .filter_map(|a| a.get_long())
        .map(|l| (strsim::levenshtein(key, l), l))
        .min();
    match nearest {
        Some((d, l)) if d <= (key.len() / 3).max(2) => {
            format!("unknown option {key:?}; did you mean {l:?}?")
        }
        _ => format!("unknown option {key:?}; the keys are the long flag names of `run --help`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd() -> Command {
        Command::new("run")
            .arg(Arg::new("ping_interval").long("ping-interval"))
            .arg(Arg::new("peers").long("peer").action(ArgAction::Append))
            .arg(Arg::new("no_gpu").long("no-gpu").action(ArgAction::SetTrue))
            .arg(Arg::new("config").long("config"))
    }

    fn flags(text: &str) -> Result<Vec<String>, String> {
        let given = |_: &str| false;
        flags_from_text(text, &cmd(), &given).map(|v| {
            v.into_iter()
                .map(|f| f.to_string_lossy().into_owned())
                .collect()
        })
    }

    #[test]
    fn entries_become_flags() {
        assert_eq!(
            flags("ping-interval: 30s\npeer: [a=10.0.0.1, b]\nno-gpu: true\n"),
            Ok(vec![
                "--ping-interval=30s".to_owned(),
                "--peer=a=10.0.0.1".to_owned(),
                "--peer=b".to_owned(),
                "--no-gpu".to_owned(),
            ])
        );
        assert_eq!(
            flags("no-gpu: false\npeer: solo\n"),
            Ok(vec!["--peer=solo".to_owned()])
        );
        assert_eq!(flags("# nothing but a comment\n"), Ok(vec![]));
        assert_eq!(flags(""), Ok(vec![]));
    }

    #[test]
    fn given_options_are_left_to_the_command_line() {
        let given = |id: &str| id == "ping_interval";
        let f =
            flags_from_text("ping-interval: 30s\nno-gpu: true\n", &cmd(), &given).expect("valid");
        assert_eq!(f, vec![OsString::from("--no-gpu")]);
    }

    #[test]
    fn an_unknown_key_names_the_nearest() {
        let e = flags("ping-intervall: 10s").expect_err("unknown");
        assert!(e.contains("\"ping-interval\""), "{e}");
        let e = flags("frobnicate: 1").expect_err("unknown");
        assert!(e.contains("run --help"), "{e}");
        let e = flags("config: other.yaml").expect_err("config in config");
        assert!(e.contains("unknown option \"config\""), "{e}");
    }

    #[test]
    fn a_syntax_error_has_line_and_column() {
        let e = flags("ping-interval: 10s\npeer: [a, b\n").expect_err("unclosed list");
        assert!(e.starts_with("YAML syntax error at line "), "{e}");
        assert!(e.contains(" column "), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }

    #[test]
    fn wrong_shapes_are_named() {
        let e = flags("no-gpu: yes please").expect_err("not a bool");
        assert!(e.contains("no-gpu: expected true or false"), "{e}");
        let e = flags("ping-interval: [1s, 2s]").expect_err("a list");
        assert!(
            e.contains("ping-interval: expected one value, found a list"),
            "{e}"
        );
        let e = flags("peer: [[a]]").expect_err("nested");
        assert!(e.contains("peer: expected a list of values"), "{e}");
        let e = flags("- a\n- b\n").expect_err("top-level list");
        assert!(e.contains("expected a mapping"), "{e}");
    }
}
