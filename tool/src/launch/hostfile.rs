//! Checks an Open MPI hostfile before `mpirun` sees it, so that a bad line
//! gets a message naming the line and what to write instead of Open MPI's
//! parser error or a job that waits for a host that does not exist.
//!
//! The format is Open MPI's: one host per line, `HOST [slots=N]
//! [max_slots=N]`, `#` starts a comment, blank lines are skipped.

use std::path::Path;

use crate::{Error, Result};

/// One host of a hostfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    /// The host's name or address.
    pub host: String,
    /// `slots=N`, if given (Open MPI counts the host's cores otherwise).
    pub slots: Option<usize>,
}

/// Keys Open MPI's hostfile parser accepts whose value is a count.
const COUNT_KEYS: &[&str] = &[
    "slots",
    "count",
    "max_slots",
    "max-slots",
    "slots_max",
    "slots-max",
    "boards",
    "sockets",
    "sockets_per_board",
    "cores",
    "cores_per_socket",
    "port",
];

/// Keys whose value is a word.
const WORD_KEYS: &[&str] = &["username", "user"];

/// Parses and checks the hostfile text `text` (named `name` in messages).
pub fn parse(text: &str, name: &str) -> Result<Vec<HostEntry>> {
    let mut hosts = Vec::new();
    for (number, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad = |why: String| {
            Error::Usage(format!(
                "{name} line {}: `{}`: {why}; write `HOST slots=N` (one host per line, `#` for comments)",
                number + 1,
                raw.trim()
            ))
        };
        let mut words = line.split_whitespace();
        let host = words.next().unwrap_or_default();
        // One colon is `host:slots`, which belongs on --host, not here; an
        // IPv6 address has several.
        let colons = host.matches(':').count();
        if host.contains('=') || colons == 1 || host.contains(',') {
            return Err(bad(format!("`{host}` is not a host name")));
        }
        let mut entry = HostEntry {
            host: host.to_string(),
            slots: None,
        };
        for word in words {
            let Some((key, value)) = word.split_once('=') else {
                return Err(bad(format!("`{word}` is not KEY=VALUE")));
            };
            let key = key.to_ascii_lowercase();
            if COUNT_KEYS.contains(&key.as_str()) {
                let n: usize = value.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                    bad(format!(
                        "`{key}` must be a positive whole number, not `{value}`"
                    ))
                })?;
                if key == "slots" || key == "count" {
                    entry.slots = Some(n);
                }
            } else if WORD_KEYS.contains(&key.as_str()) {
                if value.is_empty() {
                    return Err(bad(format!("`{key}` needs a value")));
                }
            } else {
                return Err(bad(format!(
                    "unknown key `{key}` (Open MPI knows slots, max_slots, count, username, port)"
                )));
            }
        }
        hosts.push(entry);
    }
    if hosts.is_empty() {
        return Err(Error::Usage(format!(
            "{name} names no host: write one line per host, `HOST slots=N`"
        )));
    }
    Ok(hosts)
}

/// Reads and checks the hostfile at `path`; with every host's slots given,
/// also checks that `ranks` fit unless `oversubscribe`.
pub fn check(path: &Path, ranks: usize, oversubscribe: bool) -> Result<Vec<HostEntry>> {
    let name = format!("hostfile {}", path.display());
    let text = std::fs::read(path).map_err(|e| {
        let why = if e.kind() == std::io::ErrorKind::NotFound {
            "it does not exist".to_string()
        } else {
            e.to_string()
        };
        Error::Usage(format!(
            "cannot read {name}: {why}; write one line per host, `HOST slots=N`"
        ))
    })?;
    let text = String::from_utf8(text).map_err(|_| {
        Error::Usage(format!(
            "{name} is not text: write one line per host, `HOST slots=N`"
        ))
    })?;
    let hosts = parse(&text, &name)?;
    let slots: Option<usize> = hosts
        .iter()
        .try_fold(0usize, |sum, h| h.slots.map(|s| sum.saturating_add(s)));
    if let Some(slots) = slots
        && ranks > slots
        && !oversubscribe
    {
        return Err(Error::Usage(format!(
            "{name} offers {slots} slots for -n {ranks}: add hosts, raise their slots=, pass fewer ranks, or pass --oversubscribe"
        )));
    }
    Ok(hosts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_hostfiles_parse() {
        let text = "# cluster\nnode1 slots=4\n\n  node2 slots=4 max_slots=8 # spare\n10.0.0.3\n";
        let hosts = parse(text, "hf").unwrap();
        assert_eq!(
            hosts,
            vec![
                HostEntry {
                    host: "node1".into(),
                    slots: Some(4)
                },
                HostEntry {
                    host: "node2".into(),
                    slots: Some(4)
                },
                HostEntry {
                    host: "10.0.0.3".into(),
                    slots: None
                },
            ]
        );
    }

    #[test]
    fn bad_lines_are_named_with_what_to_write() {
        for (text, why) in [
            (
                "node1 slots=4\nnode2 slots=four\n",
                "line 2: `node2 slots=four`: `slots` must be a positive whole number",
            ),
            (
                "node1 slots=0\n",
                "`slots` must be a positive whole number, not `0`",
            ),
            ("node1 4\n", "`4` is not KEY=VALUE"),
            ("node1:4\n", "`node1:4` is not a host name"),
            ("slots=4\n", "`slots=4` is not a host name"),
            ("node1 cpus=4\n", "unknown key `cpus`"),
            ("# nothing\n\n", "names no host"),
        ] {
            let e = parse(text, "hf").unwrap_err().to_string();
            assert!(e.contains(why), "{text:?}: {e}");
            assert!(e.contains("HOST slots=N"), "{e}");
        }
    }

    #[test]
    fn too_many_ranks_for_the_slots_is_refused_unless_oversubscribed() {
        let dir = std::env::temp_dir().join(format!("tessera-hf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hosts");
        std::fs::write(&path, "a slots=2\nb slots=2\n").unwrap();
        assert!(check(&path, 4, false).is_ok());
        let e = check(&path, 5, false).unwrap_err().to_string();
        assert!(e.contains("offers 4 slots for -n 5"), "{e}");
        assert!(check(&path, 5, true).is_ok());
        // Slot counts that would overflow a sum do not panic.
        std::fs::write(&path, format!("a slots={}\nb slots=1\n", usize::MAX)).unwrap();
        assert!(check(&path, 5, false).is_ok());
        // A host without slots= gets its core count from Open MPI: no check.
        std::fs::write(&path, "a slots=2\nb\n").unwrap();
        assert!(check(&path, 5, false).is_ok());
        let e = check(&dir.join("missing"), 1, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read hostfile"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

        /// Any text is parsed or refused with the line and the format, never
        /// a panic.
        #[test]
        fn any_text_parses_or_is_refused_with_the_format(text in "(\\PC{0,20}[ =#\\n]?){0,8}") {
            match super::parse(&text, "hf") {
                Ok(hosts) => prop_assert!(!hosts.is_empty()),
                Err(e) => prop_assert!(e.to_string().contains("HOST slots=N"), "{}", e),
            }
        }
    }
}
