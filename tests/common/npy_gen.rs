//! Inputs for fuzzing the `.npy` reader, and the checks made on each: one
//! copy shared by the property tests (`tests/npy_fuzz.rs`) and the fuzz
//! benchmark (`benches/fuzz_npy.rs`), which include this file by path.
//!
//! A case is arbitrary bytes, arbitrary bytes after the magic string, a
//! header of random tokens, a well-formed header with extreme dimensions,
//! a valid file (a random element type among the supported and
//! unsupported ones, a random shape with dimensions of 0 included, C or
//! Fortran order, format version 1, 2 or 3, random key order, quotes and
//! spacing), or a valid file with random mutations (bit flips, bytes set,
//! data bytes set, truncation, insertion, deletion, the header length
//! field replaced, header text edited with the length kept right, the
//! version changed, bytes appended). [`check`] feeds it to every reader
//! and fails unless each either reads it, with exactly the values its
//! bytes hold, or refuses it with a message that says what to do; a valid
//! file must be read by the readers of its type and rank.
// Each includer uses a part of it.
#![allow(dead_code)]

use proptest::collection::vec;
use proptest::prelude::*;
use tessera::npy::{NpyHeader, parse_header, read_keys_bytes, read_npy_bytes};

/// Cases per property when `TESSERA_FUZZ_CASES` is not set, for the tests.
pub const DEFAULT_TEST_CASES: u32 = 2_000;

/// The case count: `TESSERA_FUZZ_CASES` where set, else `default`.
pub fn cases_from_env(default: u32) -> u32 {
    match std::env::var(tessera::env::FUZZ_CASES) {
        Ok(v) => v.trim().parse().unwrap_or_else(|_| {
            panic!("TESSERA_FUZZ_CASES must be a whole number of cases, not {v:?}")
        }),
        Err(_) => default,
    }
}

/// An element type a generated file may hold.
#[derive(Clone, Copy, Debug)]
pub struct Dtype {
    /// The `descr` value as written in the header (quoted, or a list for
    /// structured types).
    pub literal: &'static str,
    /// Bytes per element.
    pub item: usize,
}

impl Dtype {
    /// The descr string, without quotes (a structured list as written).
    pub fn descr(&self) -> &'static str {
        self.literal.trim_matches('\'')
    }
}

const fn dt(literal: &'static str, item: usize) -> Dtype {
    Dtype { literal, item }
}

/// How many of [`DTYPES`] (the first) some reader reads.
pub const SUPPORTED: usize = 12;

/// The types the readers read, in both byte orders, then others.
pub const DTYPES: &[Dtype] = &[
    dt("'<f8'", 8),
    dt("'>f8'", 8),
    dt("'<f4'", 4),
    dt("'>f4'", 4),
    dt("'<u4'", 4),
    dt("'>u4'", 4),
    dt("'<u8'", 8),
    dt("'>u8'", 8),
    dt("'<i4'", 4),
    dt("'>i4'", 4),
    dt("'<i8'", 8),
    dt("'>i8'", 8),
    dt("'<c16'", 16),
    dt("'<c8'", 8),
    dt("'<U3'", 12),
    dt("'|S4'", 4),
    dt("'|b1'", 1),
    dt("'<M8[ns]'", 8),
    dt("'<m8[s]'", 8),
    dt("'<f2'", 2),
    dt("'|u1'", 1),
    dt("'|i1'", 1),
    dt("'<i2'", 2),
    dt("'|O'", 8),
    dt("'=f8'", 8),
    dt("'|V4'", 4),
    dt("[('a', '<f8')]", 8),
    dt("[('a', '<i4'), ('b', '>f4')]", 8),
];

/// A well-formed `.npy` file and what it holds.
#[derive(Clone, Debug)]
pub struct Valid {
    /// Its element type.
    pub dtype: Dtype,
    /// Fortran order.
    pub fortran: bool,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its format version.
    pub version: u8,
    /// The elements in logical (C) order, each as the file stores it (in
    /// the file's byte order).
    pub elements: Vec<u8>,
    /// The file.
    pub bytes: Vec<u8>,
    /// Where its data starts.
    pub data_offset: usize,
}

/// The header text of a file: the dict with the entries in `order` (a
/// permutation index), `quote` around keys, `space` after separators and
/// an optional trailing comma, padded with spaces to 64 bytes with the
/// prefix and ending in a newline.
fn header_text(
    descr: &str,
    fortran: bool,
    shape: &[usize],
    version: u8,
    (order, quote, space, trailing): (usize, char, &str, bool),
) -> String {
    let shape = match shape {
        [d] => format!("({d},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(&format!(",{space}"))
        ),
    };
    let entries = [
        format!("{quote}descr{quote}:{space}{descr}"),
        format!(
            "{quote}fortran_order{quote}:{space}{}",
            if fortran { "True" } else { "False" }
        ),
        format!("{quote}shape{quote}:{space}{shape}"),
    ];
    const ORDERS: [[usize; 3]; 6] = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    let body = ORDERS[order % 6]
        .iter()
        .map(|&i| entries[i].as_str())
        .collect::<Vec<_>>()
        .join(&format!(",{space}"));
    let mut text = format!("{{{body}{}}}", if trailing { ", " } else { "" });
    let prefix = if version == 1 { 10 } else { 12 };
    while !(prefix + text.len() + 1).is_multiple_of(64) {
        text.push(' ');
    }
    text.push('\n');
    text
}

/// A file of the given version around a header (its length field set).
pub fn assemble(version: u8, header: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = b"\x93NUMPY".to_vec();
    out.extend([version, 0]);
    if version == 1 {
        out.extend((header.len() as u16).to_le_bytes());
    } else {
        out.extend((header.len() as u32).to_le_bytes());
    }
    out.extend(header);
    out.extend(data);
    out
}

/// The position of logical (C-order) element `i` in data stored in
/// `fortran` order.
fn stored_at(shape: &[usize], fortran: bool, i: usize) -> usize {
    if !fortran {
        return i;
    }
    // Unravel i in C order, ravel in Fortran order.
    let mut rest = i;
    let mut index = vec![0; shape.len()];
    for (axis, &d) in shape.iter().enumerate().rev() {
        index[axis] = rest % d;
        rest /= d;
    }
    let mut at = 0;
    for (axis, &d) in shape.iter().enumerate().rev() {
        at = at * d + index[axis];
    }
    at
}

/// Valid files.
pub fn valid() -> impl Strategy<Value = Valid> {
    let dim = prop_oneof![1 => Just(0usize), 6 => 1usize..=5];
    let shape = prop_oneof![
        1 => vec(dim.clone(), 0..=0),
        4 => vec(dim.clone(), 1..=1),
        4 => vec(dim.clone(), 2..=2),
        1 => vec(dim, 3..=3),
    ];
    let style = (
        0usize..6,
        prop_oneof![Just('\''), Just('"')],
        prop_oneof![Just(" "), Just(""), Just("\t ")],
        any::<bool>(),
    );
    (
        proptest::sample::select(DTYPES),
        any::<bool>(),
        shape,
        1u8..=3,
        style,
    )
        .prop_flat_map(|(dtype, fortran, shape, version, style)| {
            let n: usize = shape.iter().product();
            (
                Just((dtype, fortran, shape, version, style)),
                vec(any::<u8>(), n * dtype.item),
            )
        })
        .prop_map(|((dtype, fortran, shape, version, style), elements)| {
            let header = header_text(dtype.literal, fortran, &shape, version, style);
            let n: usize = shape.iter().product();
            let mut data = vec![0; elements.len()];
            for i in 0..n {
                let at = stored_at(&shape, fortran, i);
                data[at * dtype.item..(at + 1) * dtype.item]
                    .copy_from_slice(&elements[i * dtype.item..(i + 1) * dtype.item]);
            }
            let bytes = assemble(version, header.as_bytes(), &data);
            Valid {
                dtype,
                fortran,
                shape,
                version,
                elements,
                data_offset: bytes.len() - data.len(),
                bytes,
            }
        })
}

/// Pieces of header text, for token soups and insertions.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    ":",
    " ",
    "\t",
    "'descr'",
    "'fortran_order'",
    "'shape'",
    "\"shape\"",
    "'<f8'",
    "'>f4'",
    "'<i8'",
    "'|O'",
    "'<U3'",
    "'=f8'",
    "True",
    "False",
    "None",
    "0",
    "1",
    "2",
    "3",
    "-1",
    "2L",
    "1.5",
    "0x2",
    "1_0",
    "18446744073709551616",
    "9223372036854775808",
    "4294967296",
    "'",
    "\"",
    "\\",
    "\n",
    "\r",
    "\u{e9}",
    "\x00",
    "'x'",
    "((((((((",
    "))))))))",
    ", 9223372036854775807",
    ", 4294967296,",
    "0, ",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }",
];

fn token() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(TOKENS)
}

/// A position in something of any length: the fraction `raw / 2^64` of
/// it (`Pos(0)` is the start).
#[derive(Clone, Copy, Debug)]
pub struct Pos(pub u64);

impl Pos {
    /// The position within `len` items (0 where `len` is 0).
    pub fn within(self, len: usize) -> usize {
        ((len as u128 * u128::from(self.0)) >> 64) as usize
    }
}

impl Arbitrary for Pos {
    type Parameters = ();
    type Strategy = proptest::strategy::Map<proptest::num::u64::Any, fn(u64) -> Pos>;
    fn arbitrary_with((): ()) -> Self::Strategy {
        any::<u64>().prop_map(Pos)
    }
}

/// A change to a valid file.
#[derive(Clone, Debug)]
pub enum Mutation {
    /// Flip one bit.
    FlipBit(Pos, u8),
    /// Set one byte.
    SetByte(Pos, u8),
    /// Set one byte of the data (after the header, as its length field
    /// gives it), which leaves a valid file valid.
    DataByte(Pos, u8),
    /// Cut the file short.
    Truncate(Pos),
    /// Insert bytes.
    Insert(Pos, Vec<u8>),
    /// Delete up to this many bytes.
    Delete(Pos, u8),
    /// Replace the header length field (its low 16 bits for version 1).
    HeaderLen(u32),
    /// Replace a byte of the header text with a printable character, the
    /// length kept.
    HeaderChar(Pos, char),
    /// Insert a token into the header text and correct the length field.
    HeaderInsert(Pos, &'static str),
    /// Delete up to this many bytes of header text and correct the length
    /// field.
    HeaderDelete(Pos, u8),
    /// Set the format version.
    Version(u8, u8),
    /// Append bytes.
    Append(Vec<u8>),
}

/// Random mutations.
pub fn mutation() -> impl Strategy<Value = Mutation> {
    let header_len = prop_oneof![
        any::<u16>().prop_map(u32::from),
        any::<u32>(),
        0u32..300,
        Just(u32::MAX),
    ];
    let printable = prop_oneof![
        proptest::char::range(' ', '~'),
        Just('\n'),
        Just('\t'),
        Just('\x0c'),
        Just('\0'),
    ];
    prop_oneof![
        (any::<Pos>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        (any::<Pos>(), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        (any::<Pos>(), any::<u8>()).prop_map(|(i, b)| Mutation::DataByte(i, b)),
        any::<Pos>().prop_map(Mutation::Truncate),
        (any::<Pos>(), vec(any::<u8>(), 1..9)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<Pos>(), 1u8..9).prop_map(|(i, n)| Mutation::Delete(i, n)),
        header_len.prop_map(Mutation::HeaderLen),
        (any::<Pos>(), printable).prop_map(|(i, c)| Mutation::HeaderChar(i, c)),
        (any::<Pos>(), token()).prop_map(|(i, t)| Mutation::HeaderInsert(i, t)),
        (any::<Pos>(), 1u8..9).prop_map(|(i, n)| Mutation::HeaderDelete(i, n)),
        (
            prop_oneof![3 => 1u8..=3, 1 => any::<u8>()],
            prop_oneof![3 => Just(0u8), 1 => any::<u8>()]
        )
            .prop_map(|(a, b)| Mutation::Version(a, b)),
        vec(any::<u8>(), 1..17).prop_map(Mutation::Append),
    ]
}

/// The header text's range in `bytes`, as its length field gives it
/// (clamped to the file), and the length field's width.
fn header_span(bytes: &[u8]) -> Option<(usize, usize, usize)> {
    let width = match bytes.get(6)? {
        1 => 2,
        _ => 4,
    };
    let start = 8 + width;
    let field = bytes.get(8..start)?;
    let len = field
        .iter()
        .rev()
        .fold(0usize, |n, &b| (n << 8) | usize::from(b));
    Some((start, (start + len).min(bytes.len()), width))
}

/// Writes `len` into the length field of `width` bytes.
fn set_header_len(bytes: &mut [u8], width: usize, len: u32) {
    if bytes.len() >= 8 + width {
        bytes[8..8 + width].copy_from_slice(&len.to_le_bytes()[..width]);
    }
}

/// Applies `m` to `bytes`.
pub fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let at = |i: &Pos, len: usize| i.within(len);
    match m {
        Mutation::FlipBit(i, bit) if !bytes.is_empty() => {
            let p = at(i, bytes.len());
            bytes[p] ^= 1 << bit;
        }
        Mutation::SetByte(i, b) if !bytes.is_empty() => {
            let p = at(i, bytes.len());
            bytes[p] = *b;
        }
        Mutation::DataByte(i, b) => {
            if let Some((_, end, _)) = header_span(bytes)
                && end < bytes.len()
            {
                let p = end + at(i, bytes.len() - end);
                bytes[p] = *b;
            }
        }
        Mutation::Truncate(i) => bytes.truncate(at(i, bytes.len())),
        Mutation::Insert(i, b) => {
            let p = at(i, bytes.len() + 1);
            bytes.splice(p..p, b.iter().copied());
        }
        Mutation::Delete(i, n) if !bytes.is_empty() => {
            let p = at(i, bytes.len());
            let end = (p + usize::from(*n)).min(bytes.len());
            bytes.drain(p..end);
        }
        Mutation::HeaderLen(len) => {
            if let Some((_, _, width)) = header_span(bytes) {
                set_header_len(bytes, width, *len);
            }
        }
        Mutation::HeaderChar(i, c) => {
            if let Some((start, end, _)) = header_span(bytes)
                && end > start
            {
                bytes[start + at(i, end - start)] = *c as u8;
            }
        }
        Mutation::HeaderInsert(i, t) => {
            if let Some((start, end, width)) = header_span(bytes) {
                let p = start + at(i, end - start + 1);
                bytes.splice(p..p, t.bytes());
                set_header_len(bytes, width, (end - start + t.len()) as u32);
            }
        }
        Mutation::HeaderDelete(i, n) => {
            if let Some((start, end, width)) = header_span(bytes)
                && end > start
            {
                let p = start + at(i, end - start);
                let stop = (p + usize::from(*n)).min(end);
                bytes.drain(p..stop);
                set_header_len(bytes, width, (end - start - (stop - p)) as u32);
            }
        }
        Mutation::Version(a, b) if bytes.len() >= 8 => {
            bytes[6] = *a;
            bytes[7] = *b;
        }
        Mutation::Append(b) => bytes.extend(b),
        _ => {}
    }
}

/// Where a case came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Arbitrary bytes.
    Random,
    /// The magic string, then arbitrary bytes.
    Magic,
    /// A header of random tokens.
    Soup,
    /// A well-formed header with extreme dimensions.
    Shape,
    /// A valid file.
    Valid,
    /// A valid file, mutated.
    Mutated,
}

impl Origin {
    /// Every origin, in the order the benchmark reports them.
    pub const ALL: [Origin; 6] = [
        Origin::Random,
        Origin::Magic,
        Origin::Soup,
        Origin::Shape,
        Origin::Valid,
        Origin::Mutated,
    ];
}

/// One input for the readers.
#[derive(Clone)]
pub struct Case {
    /// The bytes fed to the readers.
    pub bytes: Vec<u8>,
    /// The file, where the bytes are an unmutated valid one.
    pub valid: Option<Valid>,
    /// How the case was made.
    pub origin: Origin,
}

/// Shown compactly, the bytes as a byte string, for failure reports.
impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Case {{ origin: {:?}, bytes ({}): b\"{}\"",
            self.origin,
            self.bytes.len(),
            self.bytes.escape_ascii()
        )?;
        if let Some(v) = &self.valid {
            write!(
                f,
                ", valid: {} {:?} fortran={} v{}",
                v.dtype.literal, v.shape, v.fortran, v.version
            )?;
        }
        write!(f, " }}")
    }
}

/// Arbitrary bytes.
pub fn random_bytes() -> impl Strategy<Value = Case> {
    vec(any::<u8>(), 0..256).prop_map(|bytes| Case {
        bytes,
        valid: None,
        origin: Origin::Random,
    })
}

/// The magic string and a version, then arbitrary bytes.
pub fn magic_then_random() -> impl Strategy<Value = Case> {
    (0u8..=4, vec(any::<u8>(), 0..256)).prop_map(|(version, rest)| {
        let mut bytes = b"\x93NUMPY".to_vec();
        bytes.extend([version, 0]);
        bytes.extend(rest);
        Case {
            bytes,
            valid: None,
            origin: Origin::Magic,
        }
    })
}

/// Headers of random tokens (or the dict with random tokens as values),
/// with a correct length field, then random data.
pub fn token_soup() -> impl Strategy<Value = Case> {
    let soup = || vec(token(), 0..6).prop_map(|t| t.concat());
    let text = prop_oneof![
        vec(token(), 0..30).prop_map(|t| t.concat()),
        (soup(), soup(), soup())
            .prop_map(|(d, f, s)| format!("{{'descr': {d}, 'fortran_order': {f}, 'shape': {s}}}")),
    ];
    (text, any::<bool>(), 1u8..=3, vec(any::<u8>(), 0..64)).prop_map(
        |(text, newline, version, data)| {
            let mut header = text.into_bytes();
            if newline {
                header.push(b'\n');
            }
            Case {
                bytes: assemble(version, &header, &data),
                valid: None,
                origin: Origin::Soup,
            }
        },
    )
}

/// Dimensions at the edges of what fits: 0, small, and near 2^31, 2^32,
/// 2^62, 2^63 and 2^64.
const EDGES: &[u64] = &[
    0,
    1,
    2,
    3,
    1 << 31,
    1 << 32,
    3_037_000_500,
    1 << 62,
    (1 << 63) - 1,
    1 << 63,
    u64::MAX,
];

/// Well-formed headers of a random element type whose dimensions are
/// drawn from [`EDGES`] (or are one past `u64::MAX`), then no data or 0
/// to 64 random bytes: the reader must count without overflowing.
pub fn extreme_shapes() -> impl Strategy<Value = Case> {
    let dim = prop_oneof![
        10 => proptest::sample::select(EDGES).prop_map(|d| d.to_string()),
        1 => Just("18446744073709551616".to_string()),
    ];
    (
        prop_oneof![
            3 => proptest::sample::select(&DTYPES[..SUPPORTED]),
            1 => proptest::sample::select(DTYPES),
        ],
        any::<bool>(),
        prop_oneof![1 => vec(dim.clone(), 0..=4), 4 => vec(dim, 1..=2)],
        1u8..=3,
        prop_oneof![Just(Vec::new()), vec(any::<u8>(), 0..=64)],
    )
        .prop_map(|(dtype, fortran, dims, version, data)| {
            let shape = match dims.len() {
                1 => format!("({},)", dims[0]),
                _ => format!("({})", dims.join(", ")),
            };
            let dict = format!(
                "{{'descr': {}, 'fortran_order': {}, 'shape': {shape}, }}\n",
                dtype.literal,
                if fortran { "True" } else { "False" }
            );
            Case {
                bytes: assemble(version, dict.as_bytes(), &data),
                valid: None,
                origin: Origin::Shape,
            }
        })
}

/// Valid files, unmutated.
pub fn valid_files() -> impl Strategy<Value = Case> {
    valid().prop_map(|v| Case {
        bytes: v.bytes.clone(),
        valid: Some(v),
        origin: Origin::Valid,
    })
}

/// Valid files with one to three mutations.
pub fn mutated_files() -> impl Strategy<Value = Case> {
    (valid(), vec(mutation(), 1..=3)).prop_map(|(v, mutations)| {
        let mut bytes = v.bytes;
        for m in &mutations {
            apply(&mut bytes, m);
        }
        Case {
            bytes,
            valid: None,
            origin: Origin::Mutated,
        }
    })
}

/// Every kind of case.
pub fn any_case() -> impl Strategy<Value = Case> {
    prop_oneof![
        1 => random_bytes(),
        1 => magic_then_random(),
        2 => token_soup(),
        1 => extreme_shapes(),
        3 => valid_files(),
        6 => mutated_files(),
    ]
}

/// The bytes of element `i` (logical C order) of the data after `header`,
/// in the machine's byte order.
fn native_element(header: &NpyHeader, data: &[u8], item: usize, i: usize) -> Vec<u8> {
    let at = stored_at(&header.shape, header.fortran_order, i);
    let mut e = data[at * item..(at + 1) * item].to_vec();
    let big = header.descr.starts_with('>');
    if big != cfg!(target_endian = "big") {
        e.reverse();
    }
    e
}

/// What one reader made of a case.
fn judge<T: bytemuck::Pod>(
    case: &Case,
    reader: &str,
    header: &Result<NpyHeader, String>,
    result: tessera::Result<(Vec<usize>, Vec<T>)>,
    should_read: bool,
) -> Result<bool, String> {
    let item = std::mem::size_of::<T>();
    match result {
        Err(e) => {
            let e = e.to_string();
            if should_read {
                return Err(format!("{reader} refused a valid file: {e}"));
            }
            if !e.starts_with("fuzz.npy: ") {
                return Err(format!("{reader}: the error does not name the input: {e}"));
            }
            if e.contains("cannot decode it") {
                return Err(format!(
                    "{reader}: ndarray-npy refused what the checks passed: {e}"
                ));
            }
            // What to do: how to save a file that reads, or (another
            // element type) which type to read it as or convert it to.
            let advice = ["numpy.save", "read it as", "convert the file", "save the "];
            if !advice.iter().any(|a| e.contains(a)) {
                return Err(format!("{reader}: the error does not say what to do: {e}"));
            }
            if let Err(h) = header
                && !e.contains(h.as_str())
            {
                return Err(format!(
                    "{reader}: says `{e}` where parse_header says `{h}`"
                ));
            }
            Ok(false)
        }
        Ok((shape, values)) => {
            let header = header
                .as_ref()
                .map_err(|h| format!("{reader} read what parse_header refuses ({h})"))?;
            if shape != header.shape {
                return Err(format!(
                    "{reader} read shape {shape:?}, the header says {:?}",
                    header.shape
                ));
            }
            let data = &case.bytes[header.data_offset..];
            for (i, v) in values.iter().enumerate() {
                let want = match &case.valid {
                    // Independently of parse_header: what the generator put.
                    Some(valid) => {
                        let mut e = valid.elements[i * item..(i + 1) * item].to_vec();
                        if valid.dtype.descr().starts_with('>') != cfg!(target_endian = "big") {
                            e.reverse();
                        }
                        e
                    }
                    None => native_element(header, data, item, i),
                };
                if bytemuck::bytes_of(v) != want.as_slice() {
                    return Err(format!(
                        "{reader}: element {i} is {:?}, the file holds {want:?}",
                        bytemuck::bytes_of(v)
                    ));
                }
            }
            Ok(true)
        }
    }
}

/// Whether a valid file of `dtype` and rank `ndim` must be read by a
/// reader of type code `code` and rank `rank`.
fn must_read(case: &Case, code: &str, rank: usize) -> bool {
    case.valid.as_ref().is_some_and(|v| {
        let descr = v.dtype.descr();
        (descr.starts_with('<') || descr.starts_with('>'))
            && &descr[1..] == code
            && v.shape.len() == rank
    })
}

fn matrix<T: tessera::ops::Float + bytemuck::Pod>(
    case: &Case,
    header: &Result<NpyHeader, String>,
    code: &str,
) -> Result<bool, String> {
    let result = read_npy_bytes::<T>(&case.bytes, "fuzz.npy").map(|a| {
        let shape = a.shape().to_vec();
        (shape, a.iter().copied().collect())
    });
    let reader = format!("read_npy_bytes::<{}>", T::DTYPE);
    judge(case, &reader, header, result, must_read(case, code, 2))
}

fn keys<K: tessera::ops::sort::SortKey>(
    case: &Case,
    header: &Result<NpyHeader, String>,
) -> Result<bool, String> {
    let result = read_keys_bytes::<K>(&case.bytes, "fuzz.npy").map(|k| (vec![k.len()], k));
    let reader = format!("read_keys_bytes::<{}>", K::DTYPE);
    judge(case, &reader, header, result, must_read(case, K::NPY, 1))
}

/// Feeds `case` to `parse_header` and to every reader (2-D f32 and f64,
/// 1-D keys of each key type). Returns whether any reader read it, or why
/// the case fails: a reader read values other than the file holds, refused
/// a valid file of its type and rank, or refused with a message that does
/// not name the input, does not say what to do, or comes from
/// `ndarray-npy` after the reader's own checks passed it. Panics are left
/// to the caller's runner.
pub fn check(case: &Case) -> Result<bool, String> {
    let header = parse_header(&case.bytes);
    if case
        .valid
        .as_ref()
        .is_some_and(|v| v.dtype.literal.starts_with('['))
    {
        match &header {
            Err(e) if e.contains("structured (record) array") => {}
            _ => return Err(format!("parse_header took a structured dtype: {header:?}")),
        }
    } else if let Some(valid) = &case.valid {
        let h = header
            .as_ref()
            .map_err(|e| format!("parse_header refused a valid file: {e}"))?;
        if h.shape != valid.shape
            || h.fortran_order != valid.fortran
            || h.descr != valid.dtype.descr()
            || h.data_offset != valid.data_offset
        {
            return Err(format!("parse_header misread a valid file: {h:?}"));
        }
    }
    let mut read = false;
    read |= matrix::<f64>(case, &header, "f8")?;
    read |= matrix::<f32>(case, &header, "f4")?;
    read |= keys::<u32>(case, &header)?;
    read |= keys::<u64>(case, &header)?;
    read |= keys::<i32>(case, &header)?;
    read |= keys::<i64>(case, &header)?;
    read |= keys::<f32>(case, &header)?;
    read |= keys::<f64>(case, &header)?;
    Ok(read)
}
