//! The `.npy` header: the prefix (magic string, format version, header
//! length), the header's dict, and the checks made on what it says before
//! any data is handed to `ndarray-npy`.
//!
//! Every malformed file gets a message that says what is wrong and what to
//! do: not an `.npy` file, an unknown format version, a file truncated
//! inside the prefix, the header or the data, a header length field over
//! [`MAX_HEADER_LEN`] (refused before anything is allocated for it), a
//! header that is not text or not a well-formed dict, an element type other
//! than the one asked for (object, structured, complex, string, boolean,
//! date or other arrays included), the wrong number of dimensions, or a
//! shape that does not match the data (too little or too much of it).
//!
//! The dict parser accepts the dicts that `numpy.save` writes, with the
//! keys in any order, either quote character and any spacing; it refuses
//! anything that would need more of Python's literal syntax (escapes,
//! expressions, nesting), so that whatever it accepts `ndarray-npy` decodes
//! too.

use std::cmp::Ordering;

use crate::ops::Float;
use crate::ops::sort::SortKey;

/// The longest header (the `HEADER_LEN` field) accepted, in bytes: the
/// default limit of `numpy.load` itself (`numpy.lib.format._MAX_HEADER_SIZE`),
/// which refuses longer headers unless it is given a larger
/// `max_header_size` or `allow_pickle=True`. `numpy.save` writes headers of
/// about a hundred bytes for the arrays read here, so a longer one is a
/// corrupt length field; it is refused before anything is allocated for it.
pub const MAX_HEADER_LEN: usize = 10_000;

/// What the `.npy` magic string is.
pub(super) const MAGIC: &[u8] = b"\x93NUMPY";

/// What to do about a file that is malformed.
pub(super) const RESAVE: &str = "save the array again with numpy.save(path, a, allow_pickle=False)";

/// What to do about a file that is cut short.
const RECOPY: &str =
    "copy the file again, or save the array again with numpy.save(path, a, allow_pickle=False)";

/// What an `.npy` header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// The dtype descriptor (`<f8`, `>f4`, ...).
    pub descr: String,
    /// Whether the data is in Fortran (column-major) order.
    pub fortran_order: bool,
    /// The array's shape.
    pub shape: Vec<usize>,
    /// Where the data starts.
    pub data_offset: usize,
}

impl NpyHeader {
    /// The number of elements the shape holds (1 for a 0-dimensional
    /// array), or `None` where the product overflows `usize` (never for a
    /// header from [`parse_header`]).
    pub fn element_count(&self) -> Option<usize> {
        self.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
    }
}

/// A shape the way numpy prints it: `()`, `(3,)`, `(2, 3)`.
fn py_shape(shape: &[usize]) -> String {
    match shape {
        [d] => format!("({d},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Parses and checks the header of an `.npy` file held in `bytes` (the
/// whole file, or at least its header).
///
/// Checks the magic string, the format version (1.0, 2.0 or 3.0), the
/// header length (at most [`MAX_HEADER_LEN`], and within `bytes`), the
/// header's text (ASCII for versions 1.0 and 2.0, UTF-8 for 3.0, ending in
/// a newline) and its dict: exactly the keys `descr` (a string),
/// `fortran_order` (`True` or `False`) and `shape` (a tuple of
/// non-negative integers whose product fits in memory). The element type
/// and the data are not checked here. On error, the message says what is
/// wrong and what to do.
pub fn parse_header(bytes: &[u8]) -> std::result::Result<NpyHeader, String> {
    if bytes.is_empty() {
        return Err(format!("the file is empty: {RECOPY}"));
    }
    let magic = bytes.len().min(MAGIC.len());
    if bytes[..magic] != MAGIC[..magic] {
        return Err(
            "not an .npy file (it does not start with \\x93NUMPY): save the array with numpy.save(path, a, allow_pickle=False)"
                .to_string(),
        );
    }
    let truncated_prefix = || {
        format!(
            "the file is truncated: it ends after {} bytes, inside the .npy prefix: {RECOPY}",
            bytes.len()
        )
    };
    if bytes.len() < MAGIC.len() + 2 {
        return Err(truncated_prefix());
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let len_size = match (major, minor) {
        (1, 0) => 2,
        (2, 0) | (3, 0) => 4,
        _ => {
            return Err(format!(
                "unsupported .npy format version {major}.{minor} (known: 1.0, 2.0, 3.0): the file is corrupt or from a newer numpy; {RESAVE}"
            ));
        }
    };
    let prefix = MAGIC.len() + 2 + len_size;
    if bytes.len() < prefix {
        return Err(truncated_prefix());
    }
    let header_len = if len_size == 2 {
        u16::from_le_bytes([bytes[8], bytes[9]]) as usize
    } else {
        u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize
    };
    if header_len > MAX_HEADER_LEN {
        return Err(format!(
            "the header claims {header_len} bytes, more than the {MAX_HEADER_LEN} that numpy.load accepts: its length field is corrupt; {RESAVE}"
        ));
    }
    let available = bytes.len() - prefix;
    if header_len > available {
        return Err(format!(
            "the file ends inside the header: the header claims {header_len} bytes but the file holds only {available} after the prefix: the file is truncated or its header length is corrupt; {RECOPY}"
        ));
    }
    let raw = &bytes[prefix..prefix + header_len];
    if major < 3
        && let Some(at) = raw.iter().position(|b| !b.is_ascii())
    {
        return Err(format!(
            "the header holds the non-ASCII byte 0x{:02x} (at byte {}), which format version {major}.0 does not allow: the file is corrupt; {RESAVE}",
            raw[at],
            prefix + at
        ));
    }
    let text = std::str::from_utf8(raw).map_err(|e| {
        format!(
            "the header is not UTF-8 text (an invalid byte at byte {}): the file is corrupt; {RESAVE}",
            prefix + e.valid_up_to()
        )
    })?;
    let dict = text.strip_suffix('\n').ok_or_else(|| {
        format!(
            "the header does not end with a newline, as numpy.save writes it: the file is corrupt or its header length is wrong; {RESAVE}"
        )
    })?;
    let (descr, fortran_order, shape) = DictParser { text: dict, pos: 0 }.parse()?;
    // ndarray's limit: the product of the non-zero dimensions must fit in
    // an isize, or it cannot even describe the (empty) array.
    let fits = shape
        .iter()
        .filter(|&&d| d != 0)
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .is_some_and(|n| n <= isize::MAX as usize);
    if !fits {
        return Err(format!(
            "the shape {} has more elements than any file can hold: the header is corrupt; {RESAVE}",
            py_shape(&shape)
        ));
    }
    Ok(NpyHeader {
        descr,
        fortran_order,
        shape,
        data_offset: prefix + header_len,
    })
}

/// Parses the dict of an `.npy` header: the subset of Python's literal
/// syntax that `numpy.save` writes (string keys, a string or a structured
/// dtype for `descr`, `True`/`False`, a flat tuple of decimal integers),
/// with the whitespace Python allows on one line.
struct DictParser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> DictParser<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_space(&mut self) {
        while let Some(b' ' | b'\t' | b'\x0c') = self.peek() {
            self.pos += 1;
        }
    }

    /// Skips whitespace, then consumes `c` if it comes next.
    fn eat(&mut self, c: u8) -> bool {
        self.skip_space();
        let next = self.peek() == Some(c);
        if next {
            self.pos += 1;
        }
        next
    }

    /// A malformed-header error at the current position.
    fn fail<T>(&self, what: impl std::fmt::Display) -> std::result::Result<T, String> {
        const SHOWN: usize = 120;
        let shown: String = self.text.chars().take(SHOWN).collect();
        let more = if self.text.chars().nth(SHOWN).is_some() {
            "..."
        } else {
            ""
        };
        Err(format!(
            "malformed header ({what}, at character {} of {shown:?}{more}): the file is corrupt or was not written by numpy.save; {RESAVE}",
            self.text[..self.pos.min(self.text.len())].chars().count()
        ))
    }

    /// A quoted string without escapes (as numpy writes them).
    fn string(&mut self) -> std::result::Result<&'a str, String> {
        self.skip_space();
        let quote = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => return self.fail("expected a quoted string"),
        };
        let bytes = self.text.as_bytes();
        let start = self.pos + 1;
        let mut end = start;
        loop {
            match bytes.get(end) {
                Some(&c) if c == quote => break,
                Some(b'\\') => {
                    self.pos = end;
                    return self.fail("a backslash escape in a string");
                }
                None | Some(b'\n' | b'\r') => return self.fail("an unterminated string"),
                Some(_) => end += 1,
            }
        }
        self.pos = end + 1;
        // Both ends are at ASCII quotes, hence at character boundaries.
        Ok(&self.text[start..end])
    }

    /// A run of letters, digits and underscores (possibly empty).
    fn word(&mut self) -> &'a str {
        self.skip_space();
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    fn parse(mut self) -> std::result::Result<(String, bool, Vec<usize>), String> {
        if !self.eat(b'{') {
            return self.fail("the header is not a Python dict: expected '{'");
        }
        let mut descr: Option<String> = None;
        let mut fortran_order: Option<bool> = None;
        let mut shape: Option<Vec<usize>> = None;
        if !self.eat(b'}') {
            loop {
                self.skip_space();
                if !matches!(self.peek(), Some(b'\'' | b'"')) {
                    return self.fail("expected a quoted key or '}'");
                }
                let key = self.string()?;
                if !self.eat(b':') {
                    return self.fail(format!("expected ':' after the key '{key}'"));
                }
                let fresh = match key {
                    "descr" => descr.replace(self.descr()?).is_none(),
                    "fortran_order" => fortran_order.replace(self.boolean()?).is_none(),
                    "shape" => shape.replace(self.shape()?).is_none(),
                    _ => {
                        return self.fail(format!(
                            "an unknown key {key:?}: an .npy header holds only 'descr', 'fortran_order' and 'shape'"
                        ));
                    }
                };
                if !fresh {
                    return self.fail(format!("the key '{key}' appears twice"));
                }
                if self.eat(b',') {
                    if self.eat(b'}') {
                        break;
                    }
                } else if self.eat(b'}') {
                    break;
                } else {
                    return self.fail("expected ',' or '}' after an entry");
                }
            }
        }
        self.skip_space();
        if self.pos != self.text.len() {
            return self.fail("text after the dict's closing '}'");
        }
        let missing = |key: &str| {
            format!(
                "the header has no '{key}' entry: the file is corrupt or was not written by numpy.save; {RESAVE}"
            )
        };
        Ok((
            descr.ok_or_else(|| missing("descr"))?,
            fortran_order.ok_or_else(|| missing("fortran_order"))?,
            shape.ok_or_else(|| missing("shape"))?,
        ))
    }

    fn descr(&mut self) -> std::result::Result<String, String> {
        self.skip_space();
        match self.peek() {
            Some(b'\'' | b'"') => Ok(self.string()?.to_string()),
            Some(b'[' | b'{') => Err(
                "holds a structured (record) array, which is not supported: save one plain numeric field or column (numpy: numpy.save(path, a['name'], allow_pickle=False))"
                    .to_string(),
            ),
            _ => self.fail("the 'descr' entry is not a dtype string such as '<f8'"),
        }
    }

    fn boolean(&mut self) -> std::result::Result<bool, String> {
        match self.word() {
            "True" => Ok(true),
            "False" => Ok(false),
            _ => self.fail("'fortran_order' must be True or False"),
        }
    }

    fn shape(&mut self) -> std::result::Result<Vec<usize>, String> {
        if !self.eat(b'(') {
            return self.fail("'shape' must be a tuple of integers such as (2, 3)");
        }
        let mut dims = Vec::new();
        if self.eat(b')') {
            return Ok(dims);
        }
        loop {
            dims.push(self.dimension()?);
            if self.eat(b',') {
                if self.eat(b')') {
                    return Ok(dims);
                }
            } else if self.eat(b')') {
                if dims.len() == 1 {
                    return self.fail("a one-dimensional shape must be written (n,)");
                }
                return Ok(dims);
            } else {
                return self.fail("expected ',' or ')' in the shape");
            }
        }
    }

    fn dimension(&mut self) -> std::result::Result<usize, String> {
        self.skip_space();
        if self.peek() == Some(b'-') {
            return self.fail("a negative dimension in the shape");
        }
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let digits = &self.text[start..self.pos];
        match self.peek() {
            _ if digits.is_empty() => self.fail("the shape holds something other than an integer"),
            Some(b'L' | b'l') => self.fail(
                "the shape is written with Python 2 long integers (2L): load the file and save it again with a current numpy",
            ),
            Some(c) if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' => {
                self.fail("the shape holds something other than a decimal integer")
            }
            _ => match digits.parse::<usize>() {
                Ok(d) => Ok(d),
                Err(_) => {
                    self.pos = start;
                    self.fail(format!(
                        "the dimension {digits} is larger than this machine can address"
                    ))
                }
            },
        }
    }
}

/// Splits a descr into its byte-order character (`<`, `>`, `=`, `|` or
/// none) and its type code (`f8`, `U10`, ...).
fn split_descr(descr: &str) -> (&str, &str) {
    match descr.as_bytes().first() {
        Some(b'<' | b'>' | b'=' | b'|') => descr.split_at(1),
        _ => ("", descr),
    }
}

/// What a numpy type code holds, in words.
fn element_kind(code: &str) -> String {
    let bits = |digits: &str| {
        digits
            .parse::<usize>()
            .map(|bytes| format!("{}-bit ", bytes * 8))
            .unwrap_or_default()
    };
    let (letter, rest) = code.split_at(code.chars().next().map_or(0, char::len_utf8));
    match letter {
        "f" => match rest {
            "2" => "float16 numbers".to_string(),
            "4" => "float32 (f32) numbers".to_string(),
            "8" => "float64 (f64) numbers".to_string(),
            _ => format!("{}floats (longdouble)", bits(rest)),
        },
        "g" => "extended-precision floats (longdouble)".to_string(),
        "i" => format!("{}signed integers", bits(rest)),
        "u" => format!("{}unsigned integers", bits(rest)),
        "b" if rest == "1" => "booleans".to_string(),
        "?" => "booleans".to_string(),
        "c" => format!("{}complex numbers", bits(rest)),
        "U" => "Unicode strings".to_string(),
        "S" | "a" => "byte strings".to_string(),
        "M" => "datetimes".to_string(),
        "m" => "timedeltas".to_string(),
        "V" => "raw (void) records".to_string(),
        _ => "an unsupported element type".to_string(),
    }
}

/// Checks that `descr` names the type code `want` in an explicit byte
/// order. `wrong` says what is wrong with a file of another type code and
/// what to do, given that code.
fn check_element(
    descr: &str,
    want: &str,
    wrong: impl Fn(&str) -> String,
) -> std::result::Result<(), String> {
    let (order, code) = split_descr(descr);
    if code.starts_with('O') {
        return Err(format!(
            "holds Python objects (descr '{descr}'): object arrays are not supported, as reading them means unpickling; save a numeric array (numpy: numpy.save(path, numpy.asarray(a, dtype=float), allow_pickle=False))"
        ));
    }
    if code != want {
        return Err(format!(
            "holds {} (descr '{descr}'){}",
            element_kind(code),
            wrong(code)
        ));
    }
    if order != "<" && order != ">" {
        return Err(format!(
            "the descr '{descr}' does not give the byte order ('<' little-endian or '>' big-endian) as numpy.save always does: {RESAVE}"
        ));
    }
    Ok(())
}

/// Whether numpy's `astype` from type code `from` to `to` keeps every value
/// exactly (booleans and narrower integers widen; integers of up to 16 bits
/// fit float32's 24-bit significand, of up to 32 bits float64's 53).
fn widens(from: &str, to: &str) -> bool {
    from == to
        || matches!(
            (from, to),
            ("b1", "u4" | "u8" | "i4" | "i8" | "f4" | "f8")
                | ("u1" | "u2", "u4" | "u8" | "i4" | "i8" | "f4" | "f8")
                | ("i1" | "i2", "i4" | "i8" | "f4" | "f8")
                | ("u4", "u8" | "i8" | "f8")
                | ("i4", "i8" | "f8")
                | ("f2", "f4" | "f8")
                | ("f4", "f8")
        )
}

/// The numpy line that converts a file of type code `from` to `to`, where
/// that conversion loses nothing.
fn lossless_conversion(from: &str, to: &str) -> Option<String> {
    widens(from, to).then(|| {
        format!("numpy.save(path, a.astype('<{to}'), allow_pickle=False), which loses nothing")
    })
}

/// The conversion that loses nothing from the type code `from` to the
/// first of `targets` it widens to, named `(tessera name, numpy line)`.
fn first_lossless(from: &str, targets: &[&'static str]) -> Option<(&'static str, String)> {
    targets
        .iter()
        .find_map(|&to| Some((key_dtype(to)?, lossless_conversion(from, to)?)))
}

/// The Tessera element type (`u32`, `u64`, `i32`, `i64`, `f32`, `f64`) of
/// an `.npy` descr (`'<i8'`, `'>f4'`, ...), or `None` for a type Tessera
/// does not read.
///
/// ```
/// assert_eq!(tessera::npy::element_type("<i8"), Some("i64"));
/// assert_eq!(tessera::npy::element_type(">f4"), Some("f32"));
/// assert_eq!(tessera::npy::element_type("<i2"), None);
/// ```
pub fn element_type(descr: &str) -> Option<&'static str> {
    key_dtype(split_descr(descr).1)
}

/// The numpy line that converts an array of descr `descr` to the Tessera
/// element type `dtype` (`u32`, ..., `f64`) without changing any value, or
/// `None` where every such conversion can lose values (i64 to i32, f64 to
/// f32, ...).
///
/// ```
/// assert!(tessera::npy::lossless_conversion_to("<f4", "f64").unwrap().contains("astype('<f8')"));
/// assert_eq!(tessera::npy::lossless_conversion_to("<i8", "u32"), None);
/// ```
pub fn lossless_conversion_to(descr: &str, dtype: &str) -> Option<String> {
    let to = ["u4", "u8", "i4", "i8", "f4", "f8"]
        .into_iter()
        .find(|&code| key_dtype(code) == Some(dtype))?;
    lossless_conversion(split_descr(descr).1, to)
}

/// Checks that the data after the header is exactly what the shape needs,
/// at `item` bytes an element.
fn check_data(header: &NpyHeader, data_len: usize, item: usize) -> std::result::Result<(), String> {
    let shape = py_shape(&header.shape);
    let need = header
        .element_count()
        .and_then(|n| n.checked_mul(item))
        .filter(|&n| n <= isize::MAX as usize)
        .ok_or_else(|| {
            format!(
                "the shape {shape} needs more bytes than any file can hold: the header is corrupt; {RESAVE}"
            )
        })?;
    match data_len.cmp(&need) {
        Ordering::Equal => Ok(()),
        Ordering::Less => Err(format!(
            "shape {shape} needs {need} bytes of data but the file holds {data_len}: the file is truncated; {RECOPY}"
        )),
        Ordering::Greater => Err(format!(
            "shape {shape} needs {need} bytes of data but the file holds {data_len}, {} too many: its shape is wrong or something was appended to it; {RESAVE}",
            data_len - need
        )),
    }
}
/// Checks that a file's header describes a 2-D array of `T` whose data is
/// all there.
pub(super) fn check_matrix_header<T: Float>(
    header: &NpyHeader,
    data_len: usize,
) -> std::result::Result<(), String> {
    let want = if T::DTYPE == "f32" { "f4" } else { "f8" };
    check_element(&header.descr, want, |code| {
        let convert = lossless_conversion(code, want)
            .map(|line| format!(", or convert the file (numpy: {line})"))
            .unwrap_or_default();
        match key_dtype(code) {
            Some(dtype @ ("f32" | "f64")) => format!(
                " but {} was asked for: read it as {dtype} (tessera matmul: leave out --dtype, which the file decides){convert}",
                T::DTYPE
            ),
            _ => match first_lossless(code, &["f4", "f8"]) {
                Some((dtype, line)) => format!(
                    ": matrices are float32 or float64; convert the file to {dtype} (numpy: {line})"
                ),
                None => ": matrices are float32 or float64, and no conversion to either keeps every value of this type; save the data as float64 yourself where its values fit".to_string(),
            },
        }
    })?;
    if header.shape.len() != 2 {
        return Err(format!(
            "holds a {}-dimensional array{} of shape {}: a matrix must be 2-dimensional; save it as one (numpy: numpy.save(path, a.reshape(rows, cols), allow_pickle=False))",
            header.shape.len(),
            if header.shape.is_empty() {
                " (a scalar)"
            } else {
                ""
            },
            py_shape(&header.shape)
        ));
    }
    check_data(header, data_len, std::mem::size_of::<T>())
}

/// The `--dtype` name of a key type code, where there is one.
fn key_dtype(code: &str) -> Option<&'static str> {
    Some(match code {
        "u4" => "u32",
        "u8" => "u64",
        "i4" => "i32",
        "i8" => "i64",
        "f4" => "f32",
        "f8" => "f64",
        _ => return None,
    })
}

/// Checks that a header describes a 1-D array of key type `K`.
pub(super) fn check_keys_header<K: SortKey>(
    header: &NpyHeader,
    data_len: usize,
) -> std::result::Result<(), String> {
    check_element(&header.descr, K::NPY, |code| {
        match key_dtype(code) {
        Some(dtype) => format!(
            " but {} was asked for: read it as {dtype} (tessera sort: leave out --dtype, which the file decides){}",
            K::DTYPE,
            lossless_conversion(code, K::NPY)
                .map(|line| format!(", or convert the file (numpy: {line})"))
                .unwrap_or_default()
        ),
        None => match first_lossless(code, &["i4", "u4", "i8", "u8", "f4", "f8"]) {
            Some((dtype, line)) => format!(
                ": keys are u32, u64, i32, i64, f32 or f64; convert the file to {dtype} (numpy: {line})"
            ),
            None => ": keys are u32, u64, i32, i64, f32 or f64, and no conversion to those keeps every value of this type; save the keys as one of them where they fit".to_string(),
        },
    }
    })?;
    if header.shape.len() != 1 {
        return Err(format!(
            "holds a {}-dimensional array{} of shape {}: keys must be a 1-dimensional array; save it flattened (numpy: numpy.save(path, a.ravel(), allow_pickle=False))",
            header.shape.len(),
            if header.shape.is_empty() {
                " (a scalar)"
            } else {
                ""
            },
            py_shape(&header.shape)
        ));
    }
    check_data(header, data_len, std::mem::size_of::<K>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::npy::test_files::*;
    use crate::npy::{read_keys_bytes, read_npy_bytes};

    #[test]
    fn versions_2_and_3_and_any_key_order_read_alike() {
        let data = f64s(&[1., 2., 3., 4.], false);
        let want = ndarray::arr2(&[[1., 2.], [3., 4.]]);
        let dicts = [
            dict("<f8", false, "(2, 2)"),
            "{'shape': (2, 2), 'fortran_order': False, 'descr': '<f8'}".to_string(),
            "{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (2,2,)}".to_string(),
            "\t{ 'descr' :'<f8' ,\x0c'fortran_order':False,'shape':( 2 , 2 ) }  ".to_string(),
        ];
        for version in [1, 2, 3] {
            for d in &dicts {
                let bytes = file(version, d, &data);
                assert_eq!(
                    read_npy_bytes::<f64>(&bytes, "m").unwrap(),
                    want,
                    "v{version} {d}"
                );
            }
        }
        let keys = file(3, &dict("<f8", false, "(4,)"), &data);
        assert_eq!(
            read_keys_bytes::<f64>(&keys, "k").unwrap(),
            [1., 2., 3., 4.]
        );
    }

    #[test]
    fn files_cut_inside_the_prefix_or_header_are_refused() {
        for version in [1, 2, 3] {
            let good = file(
                version,
                &dict("<f8", false, "(2,)"),
                &f64s(&[1., 2.], false),
            );
            let offset = parse_header(&good).unwrap().data_offset;
            let prefix = if version == 1 { 10 } else { 12 };
            for cut in 0..offset {
                let what = match cut {
                    0 => "the file is empty",
                    _ if cut < prefix => "inside the .npy prefix",
                    _ => "the file ends inside the header",
                };
                both_say(&good[..cut], what, "copy the file again");
            }
            assert_eq!(
                read_keys_bytes::<f64>(&good, "k").unwrap(),
                [1., 2.],
                "v{version}"
            );
        }
    }

    #[test]
    fn huge_header_lengths_are_refused_before_allocating() {
        let mut v1 = npy("<f8", false, "(2,)", &[0; 16]);
        v1[8..10].copy_from_slice(&u16::MAX.to_le_bytes());
        both_say(
            &v1,
            "the header claims 65535 bytes, more than the 10000 that numpy.load accepts",
            "numpy.save(path, a, allow_pickle=False)",
        );
        for claim in [u32::MAX, 1 << 31, MAX_HEADER_LEN as u32 + 1] {
            let mut v2 = file(2, &dict("<f8", false, "(2,)"), &[0; 16]);
            v2[8..12].copy_from_slice(&claim.to_le_bytes());
            both_say(
                &v2,
                &format!("the header claims {claim} bytes, more than the 10000"),
                "numpy.save(path, a, allow_pickle=False)",
            );
        }
        // A genuine header of exactly the limit is read; one byte more is
        // refused even though it is all there.
        let padded = |len: usize| {
            let mut header = dict("<f8", false, "(2,)").into_bytes();
            header.resize(len - 1, b' ');
            header.push(b'\n');
            raw(2, &header, &f64s(&[1., 2.], false))
        };
        assert_eq!(
            read_keys_bytes::<f64>(&padded(MAX_HEADER_LEN), "k").unwrap(),
            [1., 2.]
        );
        both_say(
            &padded(MAX_HEADER_LEN + 1),
            "the header claims 10001 bytes",
            "numpy.save(path, a, allow_pickle=False)",
        );
        // A length that runs past the end of the file.
        let mut past = npy("<f8", false, "(2,)", &[0; 16]);
        past[8..10].copy_from_slice(&9000u16.to_le_bytes());
        both_say(
            &past,
            "the header claims 9000 bytes but the file holds only 134 after the prefix",
            "copy the file again",
        );
    }

    #[test]
    fn wrong_magic_and_unknown_versions_are_refused() {
        let good = npy("<f8", false, "(2,)", &f64s(&[1., 2.], false));
        both_say(
            b"PK\x03\x04 a zip file",
            "not an .npy file",
            "save the array with numpy.save",
        );
        let mut magic = good.clone();
        magic[5] = b'Z';
        both_say(&magic, "not an .npy file", "numpy.save");
        both_say(b"{'descr': '<f8'}", "not an .npy file", "numpy.save");
        for (major, minor) in [(9, 0), (0, 0), (1, 1), (4, 0), (2, 7)] {
            let mut bad = good.clone();
            bad[6] = major;
            bad[7] = minor;
            both_say(
                &bad,
                &format!("unsupported .npy format version {major}.{minor}"),
                "numpy.save(path, a, allow_pickle=False)",
            );
        }
    }

    #[test]
    fn headers_that_are_not_text_are_refused() {
        let data = f64s(&[1., 2.], false);
        let mut header = dict("<f8", false, "(2,)").into_bytes();
        header.extend(b" \xe9 \n");
        both_say(
            &raw(1, &header, &data),
            "the non-ASCII byte 0xe9 (at byte 68), which format version 1.0 does not allow",
            "numpy.save(path, a, allow_pickle=False)",
        );
        let mut header = dict("<f8", false, "(2,)").into_bytes();
        header.extend(b" \xff\xfe\n");
        both_say(
            &raw(3, &header, &data),
            "the header is not UTF-8 text (an invalid byte at byte 70)",
            "numpy.save(path, a, allow_pickle=False)",
        );
        // Valid UTF-8 but not whitespace numpy would write.
        let v3 = raw(
            3,
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2,)}\u{a0}\n".as_bytes(),
            &data,
        );
        both_say(&v3, "text after the dict's closing '}'", "numpy.save");
        // A non-ASCII key is merely unknown.
        let v3 = file(
            3,
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'größe': 1}",
            &data,
        );
        both_say(&v3, "an unknown key \"größe\"", "numpy.save");
    }

    #[test]
    fn malformed_header_dicts_are_refused() {
        let data = f64s(&[1., 2., 3., 4.], false);
        let cases: Vec<(String, &str)> = vec![
            (
                "{'fortran_order': False, 'shape': (2, 2), }".into(),
                "the header has no 'descr' entry",
            ),
            (
                "{'descr': '<f8', 'shape': (2, 2), }".into(),
                "the header has no 'fortran_order' entry",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, }".into(),
                "the header has no 'shape' entry",
            ),
            ("{}".into(), "the header has no 'descr' entry"),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), ".into(),
                "expected a quoted key or '}'",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2)".into(),
                "expected ',' or '}' after an entry",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2)}}".into(),
                "text after the dict's closing '}'",
            ),
            (
                "'descr': '<f8', 'fortran_order': False, 'shape': (2, 2)}".into(),
                "the header is not a Python dict",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2}".into(),
                "expected ',' or ')' in the shape",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': 2, 2)}".into(),
                "'shape' must be a tuple of integers",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': [2, 2]}".into(),
                "'shape' must be a tuple of integers",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (2.0, 2)}".into(),
                "other than a decimal integer",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (0x2, 2)}".into(),
                "other than a decimal integer",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (2_0, 2)}".into(),
                "other than a decimal integer",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': ('2', 2)}".into(),
                "other than an integer",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (None,)}".into(),
                "other than an integer",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (2L, 2L)}".into(),
                "Python 2 long integers",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (-2, -2)}".into(),
                "a negative dimension",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (4)}".into(),
                "must be written (n,)",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (,)}".into(),
                "other than an integer",
            ),
            (
                "{'descr': '<f8', 'fortran_order': 1, 'shape': (2, 2)}".into(),
                "'fortran_order' must be True or False",
            ),
            (
                "{'descr': '<f8', 'fortran_order': 'True', 'shape': (2, 2)}".into(),
                "'fortran_order' must be True or False",
            ),
            (
                "{'descr': '<f8', 'fortran_order': Truest, 'shape': (2, 2)}".into(),
                "'fortran_order' must be True or False",
            ),
            (
                "{'descr': <f8, 'fortran_order': False, 'shape': (2, 2)}".into(),
                "the 'descr' entry is not a dtype string",
            ),
            (
                "{'descr': '<f8, 'fortran_order': False, 'shape': (2, 2)}".into(),
                "expected ',' or '}' after an entry",
            ),
            ("{'descr': '<f8}".into(), "an unterminated string"),
            (
                "{'descr': '<f\\x38', 'fortran_order': False, 'shape': (2, 2)}".into(),
                "a backslash escape in a string",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), 'extra': 1}".into(),
                "an unknown key \"extra\"",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), 'shape': (2, 2)}".into(),
                "the key 'shape' appears twice",
            ),
            (
                "{descr: '<f8', 'fortran_order': False, 'shape': (2, 2)}".into(),
                "expected a quoted key",
            ),
            (
                "{'descr' '<f8', 'fortran_order': False, 'shape': (2, 2)}".into(),
                "expected ':' after the key 'descr'",
            ),
            (
                "{'descr': '<f8',, 'fortran_order': False, 'shape': (2, 2)}".into(),
                "expected a quoted key",
            ),
            (
                "{'descr': '<f8'\n, 'fortran_order': False, 'shape': (2, 2)}".into(),
                "expected ',' or '}' after an entry",
            ),
            (
                format!(
                    "{{'descr': '<f8', 'fortran_order': False, 'shape': {}2, 2{}}}",
                    "(".repeat(4000),
                    ")".repeat(4000)
                ),
                "other than an integer",
            ),
            (
                format!("{}{}", "{".repeat(5000), "}".repeat(4000)),
                "expected a quoted key",
            ),
        ];
        for (d, what) in &cases {
            both_say(
                &file(1, d, &data),
                what,
                "numpy.save(path, a, allow_pickle=False)",
            );
            both_say(
                &file(2, d, &data),
                what,
                "numpy.save(path, a, allow_pickle=False)",
            );
        }
        // No newline at the end (or no header at all).
        for header in [
            &b""[..],
            b"{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2)}  ",
        ] {
            both_say(
                &raw(1, header, &data),
                "the header does not end with a newline",
                "numpy.save(path, a, allow_pickle=False)",
            );
        }
        // A long header is shown cut short.
        let long = format!(
            "{{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), {}'extra': 1}}",
            " ".repeat(300)
        );
        let e = matrix_err(&file(1, &long, &data));
        assert!(e.contains("\"...): the file is corrupt"), "{e}");
    }

    #[test]
    fn shapes_that_overflow_are_errors_not_panics() {
        for shape in [
            "(4294967296, 4294967296, 2)",
            "(3037000500, 3037000500)",
            "(0, 18446744073709551615)",
            "(9223372036854775808, 0)",
        ] {
            both_say(
                &npy("<f8", false, shape, &[]),
                "has more elements than any file can hold",
                "numpy.save(path, a, allow_pickle=False)",
            );
        }
        both_say(
            &npy("<f8", false, "(18446744073709551616, 1)", &[]),
            "the dimension 18446744073709551616 is larger than this machine can address",
            "numpy.save(path, a, allow_pickle=False)",
        );
        // Fits as a count, not as bytes.
        says(
            &matrix_err(&npy("<f8", false, "(2147483648, 2147483648)", &[])),
            "the shape (2147483648, 2147483648) needs more bytes than any file can hold",
            "numpy.save(path, a, allow_pickle=False)",
        );
        says(
            &keys_err(&npy("<f8", false, "(4611686018427387904,)", &[])),
            "needs more bytes than any file can hold",
            "numpy.save(path, a, allow_pickle=False)",
        );
        // Large but representable: a plain truncation.
        says(
            &matrix_err(&npy("<f8", false, "(1000000000, 1000000000)", &[0; 8])),
            "needs 8000000000000000000 bytes of data but the file holds 8",
            "copy the file again",
        );
    }

    #[test]
    fn unsupported_dtypes_are_named_with_a_conversion() {
        let cases = [
            ("<c16", 16, "128-bit complex numbers"),
            ("<c8", 8, "64-bit complex numbers"),
            ("<U10", 40, "Unicode strings"),
            ("|S5", 5, "byte strings"),
            ("|b1", 1, "booleans"),
            ("<M8[ns]", 8, "datetimes"),
            ("<m8[s]", 8, "timedeltas"),
            ("<f2", 2, "float16 numbers"),
            ("<f16", 16, "128-bit floats (longdouble)"),
            ("|u1", 1, "8-bit unsigned integers"),
            ("<i2", 2, "16-bit signed integers"),
            ("|V8", 8, "raw (void) records"),
            ("<x9", 8, "an unsupported element type"),
        ];
        for (descr, item, kind) in cases {
            let (_, code) = split_descr(descr);
            let m = npy(descr, false, "(2, 2)", &vec![0; 4 * item]);
            let err = matrix_err(&m);
            says(
                &err,
                &format!("holds {kind} (descr '{descr}'): matrices are float32 or float64"),
                "",
            );
            // A conversion is offered only where it loses nothing.
            let float = ["f4", "f8"].into_iter().find(|to| widens(code, to));
            assert_eq!(err.contains("astype('<f"), float.is_some(), "{err}");
            if let Some(to) = float {
                assert!(err.contains(&format!("a.astype('<{to}')")), "{err}");
                assert!(err.contains("loses nothing"), "{err}");
            }
            let k = npy(descr, false, "(4,)", &vec![0; 4 * item]);
            let err = keys_err(&k);
            says(
                &err,
                &format!("holds {kind} (descr '{descr}'): keys are u32, u64, i32, i64, f32 or f64"),
                "",
            );
            assert!(!err.contains("asked for"), "{err}");
        }
        // Booleans and short integers widen to 32-bit keys, f16 to f32.
        for (descr, to) in [("|b1", "i4"), ("<i2", "i4"), ("|u1", "i4"), ("<f2", "f4")] {
            let item = split_descr(descr).1[1..].parse::<usize>().unwrap();
            says(
                &keys_err(&npy(descr, false, "(4,)", &vec![0; 4 * item])),
                &format!("a.astype('<{to}')"),
                "loses nothing",
            );
        }
        // Another supported type: read it as that; convert only without loss.
        let narrowing =
            crate::npy::read_npy_bytes::<f32>(&npy("<f8", false, "(2, 2)", &[0; 32]), "m.npy")
                .unwrap_err()
                .to_string();
        says(
            &narrowing,
            "but f32 was asked for: read it as f64",
            "leave out --dtype",
        );
        assert!(!narrowing.contains("astype"), "{narrowing}");
        says(
            &matrix_err(&npy("<f4", false, "(2, 2)", &[0; 16])),
            "holds float32 (f32) numbers (descr '<f4') but f64 was asked for: read it as f32",
            "a.astype('<f8')",
        );
        let keys = keys_err(&npy(">i8", false, "(2,)", &[0; 16]));
        says(
            &keys,
            "holds 64-bit signed integers (descr '>i8') but f64 was asked for: read it as i64",
            "leave out --dtype",
        );
        assert!(!keys.contains("astype"), "{keys}");
        // Structured dtypes.
        for descr in [
            "[('a', '<f8')]",
            "[('a', '<f8'), ('b', '<i4')]",
            "{'names': ['a']}",
        ] {
            let d = format!("{{'descr': {descr}, 'fortran_order': False, 'shape': (2,), }}");
            both_say(
                &file(1, &d, &[0; 16]),
                "structured (record) array",
                "numpy.save(path, a['name'], allow_pickle=False)",
            );
        }
        // A type code without a byte order, which numpy.save never writes.
        for descr in ["=f8", "f8", "|f8"] {
            both_say(
                &npy(descr, false, "(2, 2)", &[0; 32]),
                &format!("the descr '{descr}' does not give the byte order"),
                "numpy.save(path, a, allow_pickle=False)",
            );
        }
    }

    #[test]
    fn object_arrays_are_refused() {
        for descr in ["|O", "<O", "|O8"] {
            both_say(
                &npy(descr, false, "(2, 2)", &[0; 32]),
                "object arrays are not supported",
                "allow_pickle=False",
            );
        }
    }

    #[test]
    fn zero_dimensional_arrays_are_refused() {
        let scalar = npy("<f8", false, "()", &f64s(&[1.], false));
        says(
            &matrix_err(&scalar),
            "holds a 0-dimensional array (a scalar) of shape (): a matrix must be 2-dimensional",
            "a.reshape(rows, cols)",
        );
        says(
            &keys_err(&scalar),
            "holds a 0-dimensional array (a scalar) of shape (): keys must be a 1-dimensional array",
            "a.ravel()",
        );
    }

    #[test]
    fn keys_must_be_one_dimensional_and_matrices_two() {
        let four = f64s(&[1., 2., 3., 4.], false);
        says(
            &keys_err(&npy("<f8", false, "(2, 2)", &four)),
            "holds a 2-dimensional array of shape (2, 2): keys must be a 1-dimensional array",
            "a.ravel()",
        );
        says(
            &keys_err(&npy("<f8", true, "(1, 2, 2)", &four)),
            "holds a 3-dimensional array of shape (1, 2, 2)",
            "a.ravel()",
        );
        says(
            &matrix_err(&npy("<f8", false, "(4,)", &four)),
            "holds a 1-dimensional array of shape (4,): a matrix must be 2-dimensional",
            "a.reshape(rows, cols)",
        );
        says(
            &matrix_err(&npy("<f8", false, "(1, 2, 2)", &four)),
            "holds a 3-dimensional array of shape (1, 2, 2)",
            "a.reshape(rows, cols)",
        );
    }

    #[test]
    fn truncated_data_is_refused_with_the_byte_counts() {
        let good = npy("<f8", false, "(2, 2)", &f64s(&[1., 2., 3., 4.], false));
        says(
            &matrix_err(&good[..good.len() - 8]),
            "shape (2, 2) needs 32 bytes of data but the file holds 24: the file is truncated",
            "copy the file again",
        );
        let keys = npy("<f8", false, "(4,)", &f64s(&[1., 2., 3., 4.], false));
        says(
            &keys_err(&keys[..keys.len() - 1]),
            "shape (4,) needs 32 bytes of data but the file holds 31: the file is truncated",
            "copy the file again",
        );
    }

    #[test]
    fn shapes_that_do_not_match_the_data_are_refused() {
        let four = f64s(&[1., 2., 3., 4.], false);
        says(
            &matrix_err(&npy("<f8", false, "(3, 2)", &four)),
            "shape (3, 2) needs 48 bytes of data but the file holds 32: the file is truncated",
            "copy the file again",
        );
        says(
            &matrix_err(&npy("<f8", false, "(1, 3)", &four)),
            "shape (1, 3) needs 24 bytes of data but the file holds 32, 8 too many",
            "numpy.save(path, a, allow_pickle=False)",
        );
        says(
            &keys_err(&npy("<f8", false, "(5,)", &four)),
            "shape (5,) needs 40 bytes",
            "copy the file again",
        );
        says(
            &keys_err(&npy("<f8", false, "(3,)", &four)),
            "8 too many: its shape is wrong or something was appended to it",
            "numpy.save(path, a, allow_pickle=False)",
        );
    }
}
