//! The demos: `tessera matmul`, `tessera sort` and `tessera allreduce`,
//! each timed, verified and reported by rank 0.

use std::path::Path;

use clap::ValueEnum;
use tessera::Comm;
use tessera::npy::{NpyHeader, element_type, lossless_conversion_to, read_header_distributed};
use tessera_cli::demo::allreduce as allreduce_demo;
use tessera_cli::demo::matmul as matmul_demo;
use tessera_cli::demo::sort as sort_demo;
use tessera_cli::{Error, Result};

use crate::cli::{Dtype, KeyType};

/// The Tessera element type a file's header names, if it is one of `T`'s
/// values (named as clap names them).
fn file_type<T: ValueEnum>(header: &NpyHeader) -> Option<T> {
    element_type(&header.descr).and_then(|name| T::from_str(name, true).ok())
}

/// The name clap gives a value (`u32`, `f64`, ...).
fn name_of<T: ValueEnum>(value: &T) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}

/// The element type to read `path` as: the one its header names; `asked`
/// (from `--dtype`) must agree. `None` where the file holds a type this
/// command does not read (the reader then says what to do about it).
fn type_of_file<T: ValueEnum + PartialEq>(
    path: &Path,
    header: &NpyHeader,
    asked: Option<T>,
) -> Result<Option<T>> {
    let Some(file) = file_type::<T>(header) else {
        return Ok(None);
    };
    match asked {
        Some(asked) if asked != file => {
            let convert = lossless_conversion_to(&header.descr, &name_of(&asked))
                .map(|line| {
                    format!(
                        ", or convert the file to {} (numpy: {line})",
                        name_of(&asked)
                    )
                })
                .unwrap_or_default();
            Err(Error::Usage(format!(
                "--dtype {asked} was given but {path} holds {file} values (descr '{descr}'): leave out --dtype to read the file as {file}{convert}",
                asked = name_of(&asked),
                path = path.display(),
                file = name_of(&file),
                descr = header.descr,
            )))
        }
        _ => Ok(Some(file)),
    }
}

/// The element type of a multiply: the files' (both must hold the same
/// one), else `--dtype`, else f64.
fn matmul_type(world: &Comm, job: &matmul_demo::MatmulJob, asked: Option<Dtype>) -> Result<Dtype> {
    let Some((pa, pb)) = &job.inputs else {
        return Ok(asked.unwrap_or(Dtype::F64));
    };
    let (ha, hb) = (
        read_header_distributed(world, pa, 0)?,
        read_header_distributed(world, pb, 0)?,
    );
    match (type_of_file(pa, &ha, asked)?, type_of_file(pb, &hb, asked)?) {
        (Some(ta), Some(tb)) if ta != tb => {
            // Widen the narrower file; never suggest narrowing.
            let (narrow, header, wide) = if ta == Dtype::F32 {
                (pa, &ha, tb)
            } else {
                (pb, &hb, ta)
            };
            let convert = lossless_conversion_to(&header.descr, &name_of(&wide))
                .map(|line| format!(" (numpy: {line})"))
                .unwrap_or_default();
            Err(Error::Usage(format!(
                "{} holds {} values but {} holds {}: A and B must hold the same type; convert {} to {}{convert}",
                pa.display(),
                name_of(&ta),
                pb.display(),
                name_of(&tb),
                narrow.display(),
                name_of(&wide),
            )))
        }
        (Some(t), _) | (_, Some(t)) => Ok(t),
        (None, None) => Ok(asked.unwrap_or(Dtype::F64)),
    }
}

/// Runs the distributed multiply and reports it.
pub fn matmul(
    world: &Comm,
    job: &matmul_demo::MatmulJob,
    dtype: Option<Dtype>,
    verify: bool,
    json: bool,
) -> Result<u8> {
    let dtype = matmul_type(world, job, dtype)?;
    let report = match dtype {
        Dtype::F32 => matmul_demo::run::<f32>(world, job)?,
        Dtype::F64 => matmul_demo::run::<f64>(world, job)?,
    };
    print_report(world, json, &report, matmul_demo::render(&report));
    // The check applies to finite inputs only: with NaN or infinities in A
    // or B it says so, and is no failure.
    let passed = report.verified.unwrap_or(true) || report.inputs_finite == Some(false);
    Ok(verdict(world, verify, passed, "the product"))
}

/// Runs the distributed sort and reports it.
pub fn sort(
    world: &Comm,
    job: &sort_demo::SortJob,
    dtype: Option<KeyType>,
    verify: bool,
    json: bool,
) -> Result<u8> {
    let dtype = match &job.input {
        Some(path) => {
            let header = read_header_distributed(world, path, 0)?;
            type_of_file(path, &header, dtype)?
        }
        None => None,
    }
    .or(dtype)
    .unwrap_or(KeyType::U32);
    let report = match dtype {
        KeyType::U32 => sort_demo::run::<u32>(world, job)?,
        KeyType::U64 => sort_demo::run::<u64>(world, job)?,
        KeyType::I32 => sort_demo::run::<i32>(world, job)?,
        KeyType::I64 => sort_demo::run::<i64>(world, job)?,
        KeyType::F32 => sort_demo::run::<f32>(world, job)?,
        KeyType::F64 => sort_demo::run::<f64>(world, job)?,
    };
    print_report(world, json, &report, sort_demo::render(&report));
    Ok(verdict(
        world,
        verify,
        report.verified.unwrap_or(true),
        "the sort",
    ))
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
