//! The tool's error type: what the command line or a launch can get wrong,
//! and everything the `tessera` library reports.
//!
//! The library's own errors pass through unchanged ([`Error::Tessera`],
//! shown as the library shows them), so `?` works on the library's calls
//! in the tool's functions. Where a tool error has to pass through a
//! closure of the library (one that returns [`tessera::Result`], such as
//! the body of [`tessera::comm::trace::run_traced`]), it converts into
//! [`tessera::Error`] with the same message (see the `From` impl below).
//!
//! ```
//! use tessera_cli::Error;
//!
//! let e = Error::Usage("--repeat must be at least 1".into());
//! assert_eq!(e.to_string(), "--repeat must be at least 1");
//! let through = tessera::Error::from(e);
//! assert_eq!(through.to_string(), "--repeat must be at least 1");
//! let launch = Error::Launch {
//!     program: "mpirun".into(),
//!     reason: "not found".into(),
//! };
//! assert_eq!(launch.to_string(), "cannot launch mpirun: not found");
//! ```

/// Result alias of the tool.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the `tessera` command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command-line or configuration value is out of range or malformed.
    #[error("{0}")]
    Usage(String),

    /// A job could not be launched.
    #[error("cannot launch {program}: {reason}")]
    Launch {
        /// The program that was to be run.
        program: String,
        /// Why it could not be, and what to change.
        reason: String,
    },

    /// An error of the `tessera` library, shown as the library shows it.
    #[error(transparent)]
    Tessera(#[from] tessera::Error),
}

impl From<Error> for tessera::Error {
    /// A tool error passing through a closure of the library: a library
    /// error as it was, the tool's own as a program's error
    /// ([`tessera::Error::User`]) with the same message.
    fn from(e: Error) -> Self {
        match e {
            Error::Tessera(e) => e,
            own => tessera::Error::msg(own.to_string()),
        }
    }
}
