//! `tessera scaling`: the sweep, with a progress bar, then the files and
//! the table.

use tessera_cli::Result;
use tessera_cli::scaling::{self, Mode, SweepOptions, Workload};

use crate::cli::ScalingArgs;

/// Sweeps the rank counts, fits the model, writes the files and prints
/// the table.
pub fn scaling(args: ScalingArgs) -> Result<()> {
    let ScalingArgs {
        workload,
        ranks,
        mode,
        n,
        algo,
        dtype,
        repeat,
        threads,
        device,
        out,
        include_oversubscribed,
        work_exponent,
        program,
    } = args;
    let workload = if program.is_empty() {
        Workload::parse(&workload)?
    } else {
        Workload::Command(program)
    };
    let n = n.unwrap_or(match (&workload, mode) {
        (Workload::Matmul, Mode::Strong) => 2048,
        (Workload::Matmul, Mode::Weak) => 1024,
        (Workload::Sort, Mode::Strong) => 20_000_000,
        (Workload::Sort, Mode::Weak) => 5_000_000,
        (Workload::Allreduce, _) => 4_000_000,
        (Workload::Command(_), _) => 0,
    });
    let opts = SweepOptions {
        workload,
        ranks: scaling::parse_ranks(&ranks)?,
        mode,
        n,
        algo: algo.map(|a| a.name().to_string()),
        dtype,
        repeat,
        threads,
        device: device.name().to_string(),
        include_oversubscribed,
        out,
        work_exponent,
    };
    opts.validate()?;
    let total = (opts.ranks.len() * opts.repeat) as u64;
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} jobs  {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(format!("{} ranks", opts.ranks[0]));
    let mut next = opts
        .ranks
        .iter()
        .flat_map(|&p| std::iter::repeat_n(p, opts.repeat))
        .skip(1);
    let runs = scaling::sweep(&opts, |run| {
        bar.inc(1);
        bar.set_message(match next.next() {
            Some(p) => format!(
                "{p} ranks (last: {} ranks, {:.3} s)",
                run.ranks, run.seconds
            ),
            None => "done".into(),
        });
    });
    let runs = runs?;
    // A program timed from outside: measure the start-up of an empty job
    // at each rank count, to subtract and report.
    let mut startup = Vec::new();
    if runs
        .iter()
        .any(|r| r.source == scaling::TimeSource::WholeRun)
    {
        for &p in &opts.ranks {
            bar.set_message(format!("start-up of an empty job at {p} ranks"));
            startup.push(scaling::Startup {
                ranks: p,
                seconds: scaling::measure_startup(&opts, p)?,
            });
        }
    }
    bar.finish_and_clear();
    let analysis = scaling::analyse(&opts, scaling::Machine::here(), runs, startup)?;
    let (files, note) = scaling::write_outputs(&analysis, &opts.out)?;
    print!("{}", scaling::render_table(&analysis));
    for f in files {
        println!("wrote {}", f.display());
    }
    if let Some(note) = note {
        println!("{note}");
    }
    Ok(())
}
