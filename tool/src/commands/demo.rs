//! The demos: `tessera matmul`, `tessera sort` and `tessera allreduce`,
//! each timed, verified and reported by rank 0.

use tessera::Comm;
use tessera_cli::Result;
use tessera_cli::demo::allreduce as allreduce_demo;
use tessera_cli::demo::matmul as matmul_demo;
use tessera_cli::demo::sort as sort_demo;

use crate::cli::{Dtype, KeyType};

/// Runs the distributed multiply and reports it.
pub fn matmul(
    world: &Comm,
    job: &matmul_demo::MatmulJob,
    dtype: Dtype,
    verify: bool,
    json: bool,
) -> Result<u8> {
    let report = match dtype {
        Dtype::F32 => matmul_demo::run::<f32>(world, job)?,
        Dtype::F64 => matmul_demo::run::<f64>(world, job)?,
    };
    print_report(world, json, &report, matmul_demo::render(&report));
    Ok(verdict(world, verify, report.verified, "the product"))
}

/// Runs the distributed sort and reports it.
pub fn sort(
    world: &Comm,
    job: &sort_demo::SortJob,
    dtype: KeyType,
    verify: bool,
    json: bool,
) -> Result<u8> {
    let report = match dtype {
        KeyType::U32 => sort_demo::run::<u32>(world, job)?,
        KeyType::U64 => sort_demo::run::<u64>(world, job)?,
        KeyType::I32 => sort_demo::run::<i32>(world, job)?,
        KeyType::I64 => sort_demo::run::<i64>(world, job)?,
        KeyType::F32 => sort_demo::run::<f32>(world, job)?,
        KeyType::F64 => sort_demo::run::<f64>(world, job)?,
    };
    print_report(world, json, &report, sort_demo::render(&report));
    Ok(verdict(world, verify, report.verified, "the sort"))
}

/// Runs the all-reduce workload and reports it; status 1 when its checksum
/// is wrong.
pub fn allreduce(world: &Comm, job: &allreduce_demo::AllreduceJob, json: bool) -> Result<u8> {
    let report = allreduce_demo::run(world, job)?;
    let text = allreduce_demo::render(&report);
    print_report(world, json, &report, text);
    Ok(if report.verified { 0 } else { 1 })
}

/// The exit status of a demo run with `--verify`: 1, with one line on
/// standard error from rank 0, when the result was not verified.
fn verdict(world: &Comm, verify: bool, verified: bool, what: &str) -> u8 {
    if !verify || verified {
        return 0;
    }
    if world.rank() == 0 {
        eprintln!("tessera: {what} was not verified (see the report above)");
    }
    1
}

/// Prints a demo's report on rank 0: one JSON object, or the text.
fn print_report(world: &Comm, json: bool, report: &impl serde::Serialize, text: String) {
    if world.rank() != 0 {
        return;
    }
    if json {
        println!(
            "{}",
            serde_json::to_string(report).expect("report serialises")
        );
    } else {
        print!("{text}");
    }
}
