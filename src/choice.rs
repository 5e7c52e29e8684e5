//! Names for the library's small enums of choices (device, algorithm,
//! backend, key distribution): one name per variant, used by `FromStr`,
//! `Display` and the command-line tool's possible values, so that a name
//! is written once.

/// One of the library's small enums of named choices, for code generic
/// over them (the command-line tool builds clap's possible values from it).
pub trait Choice: Copy + Send + Sync + std::fmt::Display + std::str::FromStr + 'static {
    /// Every choice, in the order help texts list them.
    const ALL: &'static [Self];
    /// The name used on command lines, in reports and by `FromStr`.
    fn name(self) -> &'static str;
}

/// Implements `ALL`, `name` (inherent and as [`Choice`]), `FromStr` and
/// `Display` for a fieldless enum from a `Variant => "name"` list.
macro_rules! named_choices {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every choice, in the order help texts list them.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The name used on command lines, in reports and by `FromStr`.
            pub fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl $crate::choice::Choice for $ty {
            const ALL: &'static [$ty] = <$ty>::ALL;

            fn name(self) -> &'static str {
                <$ty>::name(self)
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $crate::Error;

            fn from_str(s: &str) -> $crate::Result<Self> {
                Self::ALL.iter().copied().find(|c| c.name() == s).ok_or_else(|| {
                    let names: Vec<&str> = Self::ALL.iter().map(|c| c.name()).collect();
                    $crate::Error::InvalidArgument {
                        op: stringify!($ty),
                        message: format!("unknown choice {s:?}: pass one of {}", names.join(", ")),
                    }
                })
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}
