//! The TrueType font the PNG needs and its registration with plotters under
//! a private family name.
//!
//! The PNG carries its own font: Ubuntu Light, embedded in the binary by the
//! `epaint_default_fonts` crate (egui's fonts, kept with egui), so a chart
//! is drawn on any machine, with or without system fonts.
//! `TESSERA_FONT=/path/font.ttf` picks another one.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use plotters::prelude::*;

/// Private family name under which the PNG writer registers its font.
pub(super) const PNG_FAMILY: &str = "tessera-png-sans";

/// Environment variable naming a TrueType font for the PNG.
pub(super) const FONT_ENV: &str = tessera::env::FONT;

/// The font that travels with the binary (Ubuntu Light, about 360 KB).
pub(super) const EMBEDDED_FONT: &[u8] = epaint_default_fonts::UBUNTU_LIGHT;

/// Larger files are not taken for fonts (they would be read whole).
const MAX_FONT_BYTES: u64 = 64 << 20;

/// The font file asked for by `$TESSERA_FONT`, when set and not empty.
pub(super) fn font_override(env: Option<OsString>) -> Option<PathBuf> {
    env.filter(|v| !v.is_empty()).map(PathBuf::from)
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

/// Registers the font of `path` as [`PNG_FAMILY`]; false when the file is
/// missing, too large or not a usable font.
fn register_file(path: &Path) -> bool {
    // A poisoned lock only means another thread panicked while holding it;
    // the map is still consistent (each entry is inserted whole).
    let mut guard = LOADED_FONTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let loaded = guard.get_or_insert_with(HashMap::new);
    let bytes = match loaded.get(path) {
        Some(cached) => *cached,
        None => {
            let fits =
                std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() <= MAX_FONT_BYTES);
            let leaked: Option<&'static [u8]> = match fits.then(|| std::fs::read(path)) {
                Some(Ok(bytes)) if looks_like_font(&bytes) => {
                    Some(Box::leak(bytes.into_boxed_slice()))
                }
                _ => None,
            };
            loaded.insert(path.to_path_buf(), leaked);
            leaked
        }
    };
    if let Some(bytes) = bytes {
        if plotters::style::register_font(PNG_FAMILY, FontStyle::Normal, bytes).is_ok() {
            return true;
        }
        loaded.insert(path.to_path_buf(), None);
    }
    false
}

/// Registers the PNG's font as [`PNG_FAMILY`]: `preferred` when it is a
/// usable font, else the embedded one. Returns a note when `preferred` was
/// given but could not be used.
pub(super) fn register_png_font(preferred: Option<&Path>) -> Option<String> {
    if let Some(path) = preferred
        && register_file(path)
    {
        return None;
    }
    // The embedded font is checked by this module's tests, so registering it
    // fails only if plotters' font loader itself is broken.
    let registered =
        plotters::style::register_font(PNG_FAMILY, FontStyle::Normal, EMBEDDED_FONT).is_ok();
    debug_assert!(registered, "the embedded font is a TrueType font");
    preferred.map(|path| {
        format!(
            "{FONT_ENV}={} is not a readable TrueType font, so the PNG uses the built-in font: point {FONT_ENV} at a .ttf file, or unset it",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_override_comes_from_the_environment_when_set() {
        assert_eq!(font_override(None), None);
        assert_eq!(font_override(Some(OsString::new())), None);
        assert_eq!(
            font_override(Some(OsString::from("/nonexistent/Font.ttf"))),
            Some(PathBuf::from("/nonexistent/Font.ttf"))
        );
    }

    #[test]
    fn the_embedded_font_is_a_truetype_font() {
        assert!(looks_like_font(EMBEDDED_FONT));
        let missing = Path::new("/nonexistent/tessera-font-test.ttf");
        let note = register_png_font(Some(missing)).expect("a note about the missing file");
        assert!(
            note.contains("tessera-font-test.ttf") && note.contains("built-in"),
            "{note}"
        );
        // The built-in font is registered: plotters can measure text with it.
        let font = FontDesc::new(FontFamily::Name(PNG_FAMILY), 12.0, FontStyle::Normal);
        let (w, h) = font
            .box_size("ranks")
            .expect("the embedded font measures text");
        assert!(w > 0 && h > 0);
    }
}
