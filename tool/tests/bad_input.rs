//! Bad input gets one clear message and exit status 2, never a hang or a
//! panic trace; degenerate input that has an answer gets the right one.
//! Every job goes through `tessera run` at several ranks, as a user would
//! start it.

mod common;

use std::path::{Path, PathBuf};

use common::jobs::{messages, run, tessera_cmd};
use common::npy::{write_npy, write_npy_f64};

/// A scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tessera-bad-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Asserts exit status 2 and exactly one message on standard error that
/// holds `expect` (clap's trailing "try --help" hint aside), with none of
/// Open MPI's boxes, no panic and no backtrace.
fn refused(stderr: &str, code: Option<i32>, expect: &str, what: &str) {
    assert_eq!(code, Some(2), "{what}: status\n{stderr}");
    let lines = messages(stderr);
    assert_eq!(lines.len(), 1, "{what}: one message, got {lines:?}");
    assert!(lines[0].contains(expect), "{what}: {lines:?}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("---------"),
        "{what}: {stderr}"
    );
}

#[test]
fn command_line_values_out_of_range_are_refused_before_launch() {
    for (args, expect) in [
        (
            vec!["run", "-n", "0"],
            "'0' for '--np <N>': must be at least 1",
        ),
        (
            vec!["run", "-n", "2", "--threads", "0"],
            "'--threads <T>': must be at least 1",
        ),
        (vec!["run", "-n", "-3"], "`-3` is not a whole number"),
        (
            vec!["run", "-n", "2", "matmul", "--m", "0"],
            "'--m <M>': must be at least 1",
        ),
        (
            vec!["run", "-n", "2", "matmul", "--k", "0"],
            "'--k <K>': must be at least 1",
        ),
        (
            vec!["run", "-n", "2", "matmul", "--repeat", "0"],
            "must be at least 1",
        ),
        (
            vec![
                "run",
                "-n",
                "2",
                "matmul",
                "--panel",
                "99999999999999999999999",
            ],
            "is not a whole number from 1 to",
        ),
        (
            vec!["run", "-n", "2", "matmul", "--grid", "2x"],
            "write ROWSxCOLS, e.g. 2x3",
        ),
        (
            vec!["run", "-n", "2", "matmul", "--grid", "0x2"],
            "write ROWSxCOLS, e.g. 2x3",
        ),
        (
            vec!["run", "-n", "2", "matmul", "--dtype", "f16"],
            "invalid value 'f16'",
        ),
        (
            vec!["run", "-n", "2", "sort", "--n", "0"],
            "'--n <N>': must be at least 1",
        ),
        (
            vec!["run", "-n", "2", "sort", "--algo", "bogo"],
            "invalid value 'bogo'",
        ),
        (
            vec!["run", "-n", "2", "allreduce", "--iters", "0"],
            "must be at least 1",
        ),
        (
            vec!["run", "-n", "2", "allreduce", "--len", "x"],
            "is not a whole number",
        ),
        (
            vec!["run", "-n", "2", "--host", "a:0"],
            "SLOTS must be a positive whole number",
        ),
        (vec!["matmul", "--m", "0"], "must be at least 1"),
        (
            vec![
                "run", "-n", "2", "matmul", "--a", "A.npy", "--b", "B.npy", "--m", "100",
            ],
            "the argument '--a <A.npy>' cannot be used with '--m <M>'",
        ),
        (
            vec!["scaling", "--workload", "sort", "--work-exponent", "2"],
            "--work-exponent is for your own program",
        ),
        (vec!["scaling", "--ranks", "0,2"], "rank"),
    ] {
        let job = tessera_cmd(&args, &[], common::jobs::TIMEOUT);
        refused(&job.stderr(), job.code(), expect, &args.join(" "));
    }
}

#[test]
fn a_hostfile_with_a_bad_line_is_refused_naming_the_line() {
    let dir = scratch("hostfile");
    let hosts = dir.join("hosts");
    for (text, expect) in [
        (
            "localhost slots=2\nlocalhost slots=two\n",
            "line 2: `localhost slots=two`",
        ),
        ("localhost 2\n", "`2` is not KEY=VALUE"),
        ("localhost slots=2 colour=red\n", "unknown key `colour`"),
        ("# only a comment\n", "names no host"),
        ("localhost slots=1\n", "offers 1 slots for -n 2"),
    ] {
        std::fs::write(&hosts, text).unwrap();
        let job = tessera_cmd(
            &["run", "-n", "2", "--hostfile", s(&hosts)],
            &[],
            common::jobs::TIMEOUT,
        );
        refused(&job.stderr(), job.code(), expect, text);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn jobs_that_cannot_be_shared_out_are_refused_on_every_rank_with_one_message() {
    for (ranks, args, expect) in [
        (
            3,
            vec!["matmul", "--grid", "2x2"],
            "cannot form a 2 x 2 process grid from 3 ranks",
        ),
        (
            4,
            vec!["matmul", "--grid", "1x2"],
            "pass a grid whose rows x cols is 4",
        ),
        (
            4,
            vec!["matmul", "--m", "1", "--k", "4", "--n", "4"],
            "--m 1 is less than the 2 grid rows",
        ),
        (
            4,
            vec!["matmul", "--m", "4", "--k", "1", "--n", "4"],
            "pass --k of at least 2",
        ),
        (
            4,
            vec!["sort", "--n", "3"],
            "--n 3 keys are fewer than the 4 ranks",
        ),
    ] {
        let job = run(ranks, &args, &[]);
        refused(&job.stderr(), job.code(), expect, &args.join(" "));
    }
}

/// The bytes of a valid 2 x 2 f64 file, for mutating.
fn good_npy(dir: &Path) -> Vec<u8> {
    let p = dir.join("good.npy");
    write_npy_f64(&p, &[2, 2], false, &[1., 2., 3., 4.]);
    std::fs::read(p).unwrap()
}

#[test]
fn malformed_npy_files_are_refused_with_what_is_wrong() {
    let dir = scratch("npy");
    let good = good_npy(&dir);
    let b = dir.join("b.npy");
    write_npy_f64(&b, &[2, 2], false, &[1., 0., 0., 1.]);
    let header_end = good.len() - 32;
    let mut huge = good.clone();
    huge[8..10].copy_from_slice(&u16::MAX.to_le_bytes());
    let mut v2_huge = b"\x93NUMPY\x02\x00".to_vec();
    v2_huge.extend(u32::MAX.to_le_bytes());
    v2_huge.extend(&good[10..]);
    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated data",
            good[..good.len() - 5].to_vec(),
            "truncated",
        ),
        (
            "truncated header",
            good[..header_end - 20].to_vec(),
            "truncated",
        ),
        ("prefix only", good[..9].to_vec(), "inside the .npy prefix"),
        ("huge header", huge, "header"),
        ("huge v2 header", v2_huge, "header"),
        (
            "wrong magic",
            b"\x93NUMPZ\x01\x00"
                .iter()
                .chain(&good[8..])
                .copied()
                .collect(),
            "not an .npy file",
        ),
        ("empty file", Vec::new(), "empty"),
    ];
    let written = |name: &str, descr: &str, shape: &str, data: &[u8]| {
        let p = dir.join(name);
        write_npy(&p, descr, false, shape, data);
        std::fs::read(p).unwrap()
    };
    for (what, name, descr, shape, len, expect) in [
        ("complex dtype", "c.npy", "<c16", "(2, 2)", 64, "<c16"),
        ("object array", "o.npy", "|O", "(2, 2)", 32, "object"),
        (
            "shape larger than data",
            "s.npy",
            "<f8",
            "(3, 2)",
            32,
            "shape (3, 2) needs 48 bytes",
        ),
        (
            "shape smaller than data",
            "l.npy",
            "<f8",
            "(1, 2)",
            32,
            "shape (1, 2)",
        ),
        (
            "one-dimensional",
            "d.npy",
            "<f8",
            "(4,)",
            32,
            "2-dimensional",
        ),
        ("wrong element type", "i.npy", "<i8", "(2, 2)", 32, "<i8"),
    ] {
        cases.push((what, written(name, descr, shape, &vec![0; len]), expect));
    }
    for (what, bytes, expect) in cases {
        let a = dir.join("a.npy");
        std::fs::write(&a, &bytes).unwrap();
        let job = run(3, &["matmul", "--a", s(&a), "--b", s(&b)], &[]);
        refused(&job.stderr(), job.code(), expect, what);
    }
    // Shapes that do not conform: 2 x 2 times 3 x 2.
    let b3 = dir.join("b3.npy");
    write_npy_f64(&b3, &[3, 2], false, &[0.; 6]);
    let a = dir.join("a.npy");
    std::fs::write(&a, &good).unwrap();
    let job = run(2, &["matmul", "--a", s(&a), "--b", s(&b3)], &[]);
    refused(
        &job.stderr(),
        job.code(),
        "shapes do not conform",
        "non-conforming",
    );
    let missing = dir.join("missing.npy");
    let job = run(2, &["matmul", "--a", s(&missing), "--b", s(&b)], &[]);
    refused(&job.stderr(), job.code(), "missing.npy", "missing file");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Reads the f64 values at the end of an .npy file with `count` of them.
fn tail_f64(path: &Path, count: usize) -> Vec<f64> {
    let bytes = std::fs::read(path).expect("output written");
    bytes[bytes.len() - 8 * count..]
        .chunks(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

#[test]
fn matmul_propagates_nan_and_infinity_as_ieee_754_says() {
    let dir = scratch("nan");
    let (pa, pb, pc) = (dir.join("a.npy"), dir.join("b.npy"), dir.join("c.npy"));
    let (inf, nan) = (f64::INFINITY, f64::NAN);
    let a = [1., nan, 0., 2., inf, 1., 3., 4., 5., -1., 2., 0.5];
    let b = [1., 0., 2., 0., 1., 0., 1., 1., -inf];
    write_npy_f64(&pa, &[4, 3], false, &a);
    write_npy_f64(&pb, &[3, 3], false, &b);
    // The reference, element by element; which entries are NaN or infinite
    // does not depend on the order of summation.
    let mut want = vec![0.0f64; 12];
    for i in 0..4 {
        for j in 0..3 {
            want[i * 3 + j] = (0..3).map(|p| a[i * 3 + p] * b[p * 3 + j]).sum();
        }
    }
    assert!(want[0].is_nan() && want[4] == inf && want[5].is_nan() && want[8] == -inf);
    for ranks in [1, 2, 4] {
        let _ = std::fs::remove_file(&pc);
        let job = run(
            ranks,
            &[
                "matmul",
                "--a",
                s(&pa),
                "--b",
                s(&pb),
                "--out",
                s(&pc),
                "--verify",
            ],
            &[],
        );
        job.assert_ok("matmul with NaN and infinity");
        assert!(
            job.stdout()
                .contains("not verified: A or B holds NaN or infinite values")
        );
        let got = tail_f64(&pc, 12);
        for (g, w) in got.iter().zip(&want) {
            let same = (g.is_nan() && w.is_nan())
                || (g.is_infinite() && g == w)
                || (w.is_finite() && (g - w).abs() <= 4.0 * f64::EPSILON * 20.0);
            assert!(same, "at {ranks} ranks: {got:?} vs {want:?}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sort_orders_nan_infinity_and_signed_zero_as_documented() {
    let dir = scratch("sortnan");
    let (input, output) = (dir.join("k.npy"), dir.join("s.npy"));
    let neg_nan = f64::from_bits(f64::NAN.to_bits() | (1 << 63));
    let keys = [
        3.0,
        f64::NAN,
        -0.0,
        f64::NEG_INFINITY,
        0.0,
        neg_nan,
        f64::INFINITY,
        -2.5,
        1e-310,
        f64::NAN,
        -1e308,
        0.0,
    ];
    let bytes: Vec<u8> = keys.iter().flat_map(|k| k.to_le_bytes()).collect();
    write_npy(&input, "<f8", false, &format!("({},)", keys.len()), &bytes);
    // IEEE 754 total order: -NaN < -inf < ... < -0 < +0 < ... < +inf < +NaN.
    let mut want = keys.to_vec();
    want.sort_by(f64::total_cmp);
    for ranks in [1, 3, 4] {
        for algo in ["sample", "merge", "radix"] {
            let _ = std::fs::remove_file(&output);
            let job = run(
                ranks,
                &[
                    "sort",
                    "--input",
                    s(&input),
                    "--out",
                    s(&output),
                    "--dtype",
                    "f64",
                    "--algo",
                    algo,
                    "--verify",
                ],
                &[],
            );
            job.assert_ok("sort with NaN, infinity and signed zeros");
            let got = tail_f64(&output, keys.len());
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{algo} at {ranks} ranks: {got:?}");
        }
    }
    // An empty key file sorts to an empty file; more ranks than keys too.
    let empty = dir.join("e.npy");
    write_npy(&empty, "<f8", false, "(0,)", &[]);
    let job = run(
        3,
        &[
            "sort",
            "--input",
            s(&empty),
            "--out",
            s(&output),
            "--dtype",
            "f64",
            "--verify",
        ],
        &[],
    );
    job.assert_ok("sort of no keys");
    let two = dir.join("two.npy");
    write_npy(
        &two,
        "<f8",
        false,
        "(2,)",
        &[2.0f64, 1.0]
            .iter()
            .flat_map(|k| k.to_le_bytes())
            .collect::<Vec<u8>>(),
    );
    let job = run(
        4,
        &[
            "sort",
            "--input",
            s(&two),
            "--out",
            s(&output),
            "--dtype",
            "f64",
            "--verify",
        ],
        &[],
    );
    job.assert_ok("sort of fewer keys than ranks");
    assert_eq!(tail_f64(&output, 2), vec![1.0, 2.0]);
    let _ = std::fs::remove_dir_all(&dir);
}
