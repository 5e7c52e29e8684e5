//! What `tessera run` prints of `mpirun`'s own messages.
//!
//! When a job fails, Open MPI surrounds the one fact that matters (which
//! rank, on which host, why) with boxed paragraphs of advice, and repeats
//! it once per layer: the rank's own message, "MPI_ABORT was invoked ...",
//! "Primary job terminated normally, but ...", "mpirun detected that one or
//! more processes exited ...". `tessera run` passes every line through but
//! these boxes: a box that only repeats what a rank already said is
//! dropped, and one that says something new is shortened to one line that
//! names the rank, the host and the reason. Boxes it does not know pass
//! through unchanged, and `tessera run --raw` passes everything.

/// Open MPI's boxes are shorter than this.
const MAX_BOX_LINES: usize = 40;

/// Open MPI draws its boxes with lines of this many dashes.
const RULE_LEN: usize = 74;

fn is_rule(line: &str) -> bool {
    line.len() == RULE_LEN && line.bytes().all(|b| b == b'-')
}

/// Whether `line` is a message a Tessera rank prints when it fails
/// (`rank R on HOST: ...`), one that rank 0 prints for several ranks that
/// failed together (`ranks 0-3 on HOST: ...`), or a Tessera command's own
/// error (`tessera: ...`).
fn is_rank_message(line: &str) -> bool {
    if line.starts_with("tessera: ") || one_rank_message(line).is_some() {
        return true;
    }
    let Some(rest) = line.strip_prefix("ranks ") else {
        return false;
    };
    let list = rest.split(" on ").next().unwrap_or("");
    !list.is_empty()
        && list
            .bytes()
            .all(|b| b.is_ascii_digit() || b"-, ".contains(&b))
        && rest.contains(": ")
}

/// `(rank, host, message)` of a one-rank failure message
/// `rank R on HOST: MESSAGE`.
fn one_rank_message(line: &str) -> Option<(usize, &str, &str)> {
    let rest = line.strip_prefix("rank ")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let rank = rest[..digits].parse().ok()?;
    let (host, message) = rest[digits..].strip_prefix(" on ")?.split_once(": ")?;
    (!host.is_empty() && !host.contains(' ')).then_some((rank, host, message))
}

/// The ranks, `rank 3` or `ranks 0-2, 5`, as the library names them.
fn rank_list(ranks: &[usize]) -> String {
    tessera::comm::rank_list(ranks)
}

/// Whether `line` is Open MPI's shared-memory transport failing to read
/// from a peer that no longer exists (`[host:pid] Read -1, expected N,
/// errno = 3`, errno 3 being ESRCH): a consequence of a rank's death, which
/// is reported on its own, not a second failure.
fn is_dead_peer_read(line: &str) -> bool {
    line.starts_with('[') && line.contains("] Read -1, expected ") && line.ends_with(", errno = 3")
}

/// Rewrites `mpirun`'s standard error line by line.
#[derive(Debug, Default)]
pub struct MessageFilter {
    /// Lines of the box being read, from its opening rule.
    open: Option<Vec<String>>,
    /// A rank has printed its own failure message.
    rank_spoke: bool,
    /// One-line summaries of boxes that only matter if no rank speaks
    /// before the stream ends (a rank's message can arrive after them).
    held: Vec<String>,
    /// Failure messages of single ranks, held until the stream pauses or
    /// ends so that identical ones print once: message, ranks, hosts.
    failures: Vec<(String, Vec<usize>, Vec<String>)>,
}

impl MessageFilter {
    /// A filter that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one line (without its newline) and returns the lines to print
    /// now.
    pub fn line(&mut self, line: &str) -> Vec<String> {
        if let Some(open) = &mut self.open {
            open.push(line.to_string());
            if open.len() > MAX_BOX_LINES {
                // Not one of Open MPI's boxes: show it as it came.
                return self.open.take().unwrap_or_default();
            }
            if is_rule(line) {
                let block = self.open.take().unwrap_or_default();
                return self.block(&block);
            }
            return Vec::new();
        }
        if is_rule(line) {
            self.open = Some(vec![line.to_string()]);
            return Vec::new();
        }
        if is_rank_message(line) {
            self.rank_spoke = true;
        }
        if let Some((rank, host, message)) = one_rank_message(line) {
            match self.failures.iter_mut().find(|(m, _, _)| m == message) {
                Some((_, ranks, hosts)) => {
                    ranks.push(rank);
                    if !hosts.iter().any(|h| h == host) {
                        hosts.push(host.to_string());
                    }
                }
                None => {
                    self.failures
                        .push((message.to_string(), vec![rank], vec![host.to_string()]))
                }
            }
            return Vec::new();
        }
        // Open MPI's note that it folded repeated boxes into one, and its
        // complaint when two ranks' aborts race in that folding.
        if line.starts_with('[')
            && (line.contains("sent help message")
                || line.contains("to 0 to see all help / error messages")
                || (line.contains("ORTE_ERROR_LOG") && line.contains("show_help.c")))
        {
            return Vec::new();
        }
        if is_dead_peer_read(line) {
            return Vec::new();
        }
        vec![line.to_string()]
    }

    /// Returns the ranks' failure messages held so far, each distinct one
    /// once with its ranks, and the lines of a box that is still open
    /// (shown unfiltered when the stream pauses, so that nothing is held
    /// while the job runs).
    pub fn flush_open(&mut self) -> Vec<String> {
        let mut out: Vec<String> = self
            .failures
            .drain(..)
            .map(|(message, mut ranks, hosts)| {
                ranks.sort_unstable();
                ranks.dedup();
                format!("{} on {}: {message}", rank_list(&ranks), hosts.join(", "))
            })
            .collect();
        out.extend(self.open.take().unwrap_or_default());
        out
    }

    /// Returns what is left when the stream ends: a box never closed, and
    /// the summary of a failure no rank explained.
    pub fn finish(&mut self) -> Vec<String> {
        let mut out = self.flush_open();
        if !self.rank_spoke {
            out.extend(self.held.drain(..).take(1));
        }
        out
    }

    fn block(&mut self, lines: &[String]) -> Vec<String> {
        let inner = &lines[1..lines.len() - 1];
        let text = inner.join("\n");
        let flat = inner.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
        if text.contains("Primary job  terminated normally")
            || text.contains("Primary job terminated normally")
        {
            return Vec::new();
        }
        if text.contains("processes exited with non-zero status") {
            let rank = process_rank(&flat);
            let code = word_after(&flat, "Exit code:");
            self.held.push(format!(
                "tessera run: rank {} exited with status {} and the job was ended",
                rank.as_deref().unwrap_or("?"),
                code.as_deref().unwrap_or("?"),
            ));
            return Vec::new();
        }
        if let Some(at) = flat.find("MPI_ABORT was invoked on rank ") {
            let rest = &flat[at + "MPI_ABORT was invoked on rank ".len()..];
            let rank = rest.split_whitespace().next().unwrap_or("?");
            let code = word_after(rest, "errorcode")
                .map(|c| c.trim_end_matches('.').to_string())
                .unwrap_or_else(|| "?".into());
            self.held.push(format!(
                "tessera run: rank {rank} called MPI_Abort (error code {code}) and the job was ended"
            ));
            return Vec::new();
        }
        if let Some(at) = flat.find("mpirun noticed that process rank ") {
            // "... rank R with PID P on node H exited on signal S (Name)."
            let rest = &flat[at + "mpirun noticed that process rank ".len()..];
            let rank = rest.split_whitespace().next().unwrap_or("?");
            let host = word_after(rest, "on node").unwrap_or_else(|| "?".into());
            if let Some(sig) = rest.split("exited on signal ").nth(1) {
                let sig = sig.trim().trim_end_matches('.');
                let number = sig.split_whitespace().next().unwrap_or("?");
                let hint = match number {
                    "9" => {
                        ": killed from outside (the out-of-memory killer, the batch system's limits, or a user); `dmesg` on that host tells which"
                    }
                    "11" | "7" => ": it crashed (a memory error); run it under gdb or valgrind",
                    "6" => ": it aborted (an assertion in a C library)",
                    _ => "",
                };
                return vec![format!(
                    "tessera run: rank {rank} on {host} ended by signal {sig}{hint}; the job was ended"
                )];
            }
            return lines.to_vec();
        }
        if flat.contains("ORTE has lost communication with a remote daemon") {
            let host = flat
                .split("Remote daemon:")
                .nth(1)
                .and_then(|r| word_after(r, "on node"))
                .unwrap_or_else(|| "?".into());
            return vec![format!(
                "tessera run: lost contact with host {host} (its network link or its Open MPI daemon failed); the job was ended"
            )];
        }
        lines.to_vec()
    }
}

/// `R` from Open MPI's process name `[[JOB,STEP],R]`.
fn process_rank(text: &str) -> Option<String> {
    let name = text.split("Process name:").nth(1)?.trim_start();
    let inner = name.strip_prefix("[[")?;
    let rank = inner.split("],").nth(1)?;
    let digits: String = rank.chars().take_while(char::is_ascii_digit).collect();
    (!digits.is_empty()).then_some(digits)
}

/// The word that follows `key` in `text`.
fn word_after(text: &str, key: &str) -> Option<String> {
    let rest = text.split(key).nth(1)?;
    rest.split_whitespace().next().map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(text: &str) -> Vec<String> {
        let mut f = MessageFilter::new();
        let mut out: Vec<String> = text.lines().flat_map(|l| f.line(l)).collect();
        out.extend(f.finish());
        out
    }

    fn rule() -> String {
        "-".repeat(RULE_LEN)
    }

    #[test]
    fn a_dead_peers_failed_shared_memory_read_is_not_a_second_message() {
        let out = filter(
            "[vm:21376] Read -1, expected 262144, errno = 3\nrank 1 on vm: error: boom\n[vm:9] Read -1, expected 8, errno = 14\n",
        );
        // ESRCH (3): the peer is gone, which the rank's message says; any
        // other errno is news and passes (at once: the ranks' messages are
        // held until the stream pauses, to print identical ones once).
        assert_eq!(
            out,
            vec![
                "[vm:9] Read -1, expected 8, errno = 14",
                "rank 1 on vm: error: boom"
            ]
        );
    }

    #[test]
    fn a_rank_message_makes_the_boxes_that_repeat_it_silent() {
        let r = rule();
        let text = format!(
            "tessera: cannot form a 2 x 2 process grid from 3 ranks\n{r}\nPrimary job  terminated normally, but 1 process returned\na non-zero exit code. Per user-direction, the job has been aborted.\n{r}\n{r}\nmpirun detected that one or more processes exited with non-zero status, thus causing\nthe job to be terminated. The first process to do so was:\n\n  Process name: [[3404,1],0]\n  Exit code:    2\n{r}\n"
        );
        assert_eq!(
            filter(&text),
            vec!["tessera: cannot form a 2 x 2 process grid from 3 ranks"]
        );
    }

    #[test]
    fn a_silent_failure_becomes_one_line_naming_the_rank() {
        let r = rule();
        let text = format!(
            "{r}\nmpirun detected that one or more processes exited with non-zero status, thus causing\nthe job to be terminated. The first process to do so was:\n\n  Process name: [[3404,1],5]\n  Exit code:    3\n{r}\n"
        );
        assert_eq!(
            filter(&text),
            vec!["tessera run: rank 5 exited with status 3 and the job was ended"]
        );
        let text = format!(
            "{r}\nMPI_ABORT was invoked on rank 2 in communicator MPI_COMM_WORLD\nwith errorcode 7.\n\nNOTE: invoking MPI_ABORT causes Open MPI to kill all MPI processes.\n{r}\n[vm:01234] 1 more process has sent help message help-mpi-api.txt / mpi-abort\n[vm:01234] Set MCA parameter \"orte_base_help_aggregate\" to 0 to see all help / error messages\n"
        );
        assert_eq!(
            filter(&text),
            vec!["tessera run: rank 2 called MPI_Abort (error code 7) and the job was ended"]
        );
        // The rank's own message may come after Open MPI's box.
        let rank_said_late = format!(
            "{r}\nMPI_ABORT was invoked on rank 2 in communicator MPI_COMM_WORLD\nwith errorcode 101.\n{r}\nrank 2 on vm: panicked: no\n"
        );
        assert_eq!(filter(&rank_said_late), vec!["rank 2 on vm: panicked: no"]);
        let rank_said = format!(
            "rank 2 on vm: panicked: no\n{r}\nMPI_ABORT was invoked on rank 2 in communicator MPI_COMM_WORLD\nwith errorcode 101.\n{r}\n"
        );
        assert_eq!(filter(&rank_said), vec!["rank 2 on vm: panicked: no"]);
    }

    #[test]
    fn identical_failure_messages_of_several_ranks_print_once() {
        let out = filter(
            "rank 2 on vm: error: same\nrank 0 on vm: error: same\nrank 1 on vm: error: other\nrank 3 on vm2: error: same\nranks 0-1 on vm: error: already grouped\n",
        );
        assert_eq!(
            out,
            vec![
                "ranks 0-1 on vm: error: already grouped",
                "ranks 0, 2-3 on vm, vm2: error: same",
                "rank 1 on vm: error: other",
            ]
        );
        assert!(is_rank_message("ranks 0-1 on vm: error: already grouped"));
        assert!(!is_rank_message("ranks of the grid: 4"));
    }

    #[test]
    fn a_killed_rank_and_a_lost_host_are_named() {
        let r = rule();
        let text = format!(
            "{r}\nmpirun noticed that process rank 1 with PID 0 on node vm exited on signal 9 (Killed).\n{r}\n"
        );
        let out = filter(&text);
        assert_eq!(out.len(), 1);
        assert!(
            out[0].starts_with(
                "tessera run: rank 1 on vm ended by signal 9 (Killed): killed from outside"
            ),
            "{out:?}"
        );
        let text = format!(
            "{r}\nORTE has lost communication with a remote daemon.\n\n  HNP daemon   : [[1,0],0] on node h1\n  Remote daemon: [[1,0],2] on node h3\n\nThis is usually due to either a failure of the TCP network\nconnection to the node, or possibly an internal failure of\nthe daemon itself. We cannot recover from this failure, and\ntherefore will terminate the job.\n{r}\n"
        );
        assert_eq!(
            filter(&text),
            vec![
                "tessera run: lost contact with host h3 (its network link or its Open MPI daemon failed); the job was ended"
            ]
        );
    }

    #[test]
    fn other_output_passes_through_unchanged() {
        let r = rule();
        let text = format!(
            "hello from rank 0\nrank table\n{r}\nSome box Tessera does not know\nwith advice.\n{r}\n----\nunclosed?\n{r}\ntail of a box never closed"
        );
        let out = filter(&text);
        assert_eq!(
            out,
            vec![
                "hello from rank 0".to_string(),
                "rank table".into(),
                r.clone(),
                "Some box Tessera does not know".into(),
                "with advice.".into(),
                r.clone(),
                "----".into(),
                "unclosed?".into(),
                r.clone(),
                "tail of a box never closed".into(),
            ]
        );
        assert!(is_rank_message("rank 12 on node-3: error: x"));
        assert!(!is_rank_message("rank table"));
        assert!(!is_rank_message("rank 1 of 4"));
    }
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

        /// Lines that are not Open MPI boxes pass through unchanged, whatever
        /// they hold, and nothing makes the filter panic.
        #[test]
        fn ordinary_lines_pass_through(lines in proptest::collection::vec("[^-\\[]\\PC{0,40}", 0..20)) {
            let mut f = super::MessageFilter::new();
            let mut out: Vec<String> = lines.iter().flat_map(|l| f.line(l)).collect();
            out.extend(f.finish());
            prop_assert_eq!(out, lines);
        }

        #[test]
        fn boxes_of_any_text_never_panic(lines in proptest::collection::vec(prop_oneof![
            Just("-".repeat(super::RULE_LEN)),
            Just("MPI_ABORT was invoked on rank".to_string()),
            Just("mpirun noticed that process rank".to_string()),
            Just("Process name: [[".to_string()),
            "\\PC{0,30}",
        ], 0..30)) {
            let mut f = super::MessageFilter::new();
            for l in &lines {
                let _ = f.line(l);
            }
            let _ = f.finish();
        }
    }
}
