//! The TrueType font the PNG needs: where to look for one, and its
//! registration with plotters under a private family name.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Mutex;

use plotters::prelude::*;

/// Private family name under which the PNG writer registers its font.
pub(super) const PNG_FAMILY: &str = "tessera-png-sans";

/// Environment variable naming a TrueType font for the PNG.
pub(super) const FONT_ENV: &str = tessera::env::FONT;
/// Where common Linux distributions install a sans-serif TrueType font.
const FONT_PATHS: [&str; 7] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
];
/// Larger files are not taken for fonts (they would be read whole).
const MAX_FONT_BYTES: u64 = 64 << 20;

/// Font files to try for the PNG: `$TESSERA_FONT` first when set and not
/// empty, then [`FONT_PATHS`].
pub(super) fn font_candidates(env: Option<OsString>) -> Vec<PathBuf> {
    env.filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .into_iter()
        .chain(FONT_PATHS.iter().map(PathBuf::from))
        .collect()
}

/// Font files already read, by path: their bytes, leaked once to get the
/// `'static` lifetime that `plotters::style::register_font` requires, or
/// `None` for a file that turned out not to be a font.
static LOADED_FONTS: Mutex<Option<FontCache>> = Mutex::new(None);

/// Font bytes by path; `None` for a file that is not a usable font.
type FontCache = HashMap<PathBuf, Option<&'static [u8]>>;

/// Whether `bytes` starts like a TrueType/OpenType font or collection.
pub(super) fn looks_like_font(bytes: &[u8]) -> bool {
    matches!(
        bytes.get(..4),
        Some([0, 1, 0, 0] | b"true" | b"OTTO" | b"ttcf")
    )
}

/// Registers the first loadable font of `candidates` as [`PNG_FAMILY`];
/// false when none is.
pub(super) fn register_first_font(candidates: &[PathBuf]) -> bool {
    // A poisoned lock only means another thread panicked while holding it;
    // the map is still consistent (each entry is inserted whole).
    let mut guard = LOADED_FONTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let loaded = guard.get_or_insert_with(HashMap::new);
    for path in candidates {
        let bytes = match loaded.get(path) {
            Some(cached) => *cached,
            None => {
                let fits =
                    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() <= MAX_FONT_BYTES);
                if !fits {
                    continue;
                }
                let Ok(bytes) = std::fs::read(path) else {
                    continue;
                };
                let leaked: Option<&'static [u8]> = if looks_like_font(&bytes) {
                    Some(Box::leak(bytes.into_boxed_slice()))
                } else {
                    None
                };
                loaded.insert(path.clone(), leaked);
                leaked
            }
        };
        if let Some(bytes) = bytes {
            if plotters::style::register_font(PNG_FAMILY, FontStyle::Normal, bytes).is_ok() {
                return true;
            }
            loaded.insert(path.clone(), None);
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_font_candidates() {
        let defaults: Vec<PathBuf> = FONT_PATHS.iter().map(PathBuf::from).collect();
        assert_eq!(font_candidates(None), defaults);
        assert_eq!(font_candidates(Some(OsString::new())), defaults);
        let with_env = font_candidates(Some(OsString::from("/nonexistent/Font.ttf")));
        assert_eq!(with_env[0], PathBuf::from("/nonexistent/Font.ttf"));
        assert_eq!(&with_env[1..], &defaults[..]);
    }
}
