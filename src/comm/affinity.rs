//! The one-core trap: Open MPI binds each rank to one core by default (at
//! two ranks or fewer), so a rank's rayon pool, which sizes itself from the
//! rank's affinity mask, runs a single thread while the node's other cores
//! sit idle, and nothing says so. At start-up every rank looks at its mask;
//! rank 0 prints one warning for all the ranks caught, with the `mpirun`
//! option that fixes it.

use super::{Comm, ReduceOp, rank_list};
use crate::error::Result;

/// How many CPUs this process may run on (its affinity mask), or `None`
/// where that cannot be read.
fn affinity_cpus() -> Option<usize> {
    // SAFETY: `set` is a plain bit set that sched_getaffinity fills for this
    // process (pid 0) given its exact size; CPU_COUNT only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        (libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0)
            .then(|| libc::CPU_COUNT(&set) as usize)
    }
}

/// The CPUs online on this node.
fn online_cpus() -> usize {
    // SAFETY: sysconf only reads a system value.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    n.max(1) as usize
}

/// The threads a rank asked for: `RAYON_NUM_THREADS` when it is set to a
/// number above 0 (rayon's own rule), else none in particular.
fn asked_threads(value: Option<String>) -> Option<usize> {
    value.and_then(|v| v.trim().parse().ok()).filter(|&t| t > 0)
}

/// The threads a rank bound to `cpus` CPUs should be able to run, when it
/// is held to fewer: what it asked for, else its share of the node's idle
/// cores. `None` when nothing is wrong.
pub(super) fn wanted_threads(
    cpus: usize,
    asked: Option<usize>,
    online: usize,
    local_ranks: usize,
) -> Option<usize> {
    if cpus != 1 {
        return None;
    }
    let want = asked.unwrap_or(online / local_ranks.max(1));
    (want > 1).then_some(want)
}

/// Checks every rank's affinity mask (collective) and, where ranks are
/// held to one core while they asked for more threads or their node has
/// idle cores, has rank 0 print one warning naming them and the fix.
pub(super) fn warn_if_held_to_one_core(world: &Comm) -> Result<()> {
    let local_ranks = world.split_shared().size();
    let asked = asked_threads(std::env::var("RAYON_NUM_THREADS").ok());
    let want = affinity_cpus()
        .and_then(|cpus| wanted_threads(cpus, asked, online_cpus(), local_ranks))
        .unwrap_or(0);
    let unchecked = world.unchecked();
    let most = unchecked.all_reduce(&[want as u64], ReduceOp::Max)?[0];
    if most == 0 {
        return Ok(());
    }
    let caught = unchecked.gather(&[u8::from(want > 0)], 0)?;
    if let Some(caught) = caught {
        let ranks: Vec<usize> = (0..caught.len()).filter(|&r| caught[r] != 0).collect();
        let why = match asked {
            Some(t) => format!("RAYON_NUM_THREADS={t} asks for {t} threads"),
            None => "the node has idle cores".to_string(),
        };
        super::abort::write_whole(&format!(
            "warning: {} {} (Open MPI's default binding), so rayon runs one thread per rank while {why}: start the job with `mpirun --bind-to none` or `mpirun --map-by slot:PE={most}` (`tessera run` binds each rank to its share of the cores)\n",
            rank_list(&ranks),
            if ranks.len() == 1 {
                "is bound to one core"
            } else {
                "are bound to one core each"
            },
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_core_is_a_problem_only_when_more_threads_are_wanted() {
        // Plain mpirun -n 1 on 8 cores: one thread where 8 could run.
        assert_eq!(wanted_threads(1, None, 8, 1), Some(8));
        // Two ranks on two cores, one each: nothing idle.
        assert_eq!(wanted_threads(1, None, 2, 2), None);
        // Asked for 4 threads, held to one core.
        assert_eq!(wanted_threads(1, Some(4), 2, 2), Some(4));
        // Asked for one thread: that is what it gets.
        assert_eq!(wanted_threads(1, Some(1), 8, 1), None);
        // Bound to several cores, or unbound: fine.
        assert_eq!(wanted_threads(2, Some(4), 8, 1), None);
        assert_eq!(wanted_threads(8, None, 8, 1), None);
        assert_eq!(asked_threads(Some(" 3".into())), Some(3));
        assert_eq!(asked_threads(Some("0".into())), None);
        assert_eq!(asked_threads(Some("many".into())), None);
        assert_eq!(asked_threads(None), None);
    }
}
