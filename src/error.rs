//! The one error type of the library.
//!
//! Every variant says what went wrong, where, and what the caller can change.
//! Collective-argument errors are returned on *every* rank of the
//! communicator, so that no rank is left waiting in a collective that the
//! others have abandoned.
//!
//! A program's own errors travel through it too, so that `?` works inside
//! [`spmd`](crate::spmd) on Tessera's calls and the program's alike:
//!
//! ```
//! use tessera::Error;
//!
//! fn parse_size(text: &str) -> tessera::Result<usize> {
//!     let n: usize = text.trim().parse()?; // a ParseIntError becomes Error::User
//!     if n == 0 {
//!         return Err(format!("size must be at least 1, got {text:?}").into());
//!     }
//!     Ok(n)
//! }
//!
//! fn read_config(path: &str) -> tessera::Result<String> {
//!     Ok(std::fs::read_to_string(path)?) // an io::Error becomes Error::Io
//! }
//!
//! assert_eq!(parse_size("12").unwrap(), 12);
//! assert!(matches!(parse_size("0"), Err(Error::User { .. })));
//! let e = parse_size("twelve").unwrap_err();
//! assert!(e.to_string().contains("invalid digit"), "{e}");
//! assert!(matches!(read_config("/no/such/file"), Err(Error::Io { .. })));
//! let wrapped = Error::user("loading the mesh", std::io::Error::other("disk full"));
//! assert_eq!(wrapped.to_string(), "loading the mesh: disk full");
//!
//! // A boxed error keeps its type, for `source()` and downcasting.
//! let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(std::fmt::Error);
//! let e = Error::from(boxed);
//! assert_eq!(e.to_string(), std::fmt::Error.to_string());
//! let source = std::error::Error::source(&e).unwrap();
//! assert!(source.downcast_ref::<std::fmt::Error>().is_some());
//! ```

/// Result alias used throughout Tessera.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in Tessera, and the errors of programs that
/// use it ([`Error::User`]). New variants may be added: match with a `_` arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// MPI was already initialised in this process (by Tessera or by another library).
    #[error(
        "MPI is already initialised in this process: create one tessera::Universe and pass its communicators around"
    )]
    AlreadyInitialized,

    /// Ranks passed arguments to a collective that do not agree; MPI would
    /// hang or corrupt memory if the call went ahead.
    #[error("{op}: ranks disagree on {what}: {detail}")]
    Disagreement {
        /// The collective that was called.
        op: &'static str,
        /// Which argument disagrees (`element count`, `root`, ...).
        what: &'static str,
        /// Which ranks gave which values, and what to change.
        detail: String,
    },

    /// An argument is invalid on its own (a root out of range, counts that do
    /// not add up to the buffer length, ...). On the rank that gave it, the
    /// message says what to change; the other ranks get an error naming it.
    #[error("{op}: {message}")]
    InvalidArgument {
        /// The call that was made.
        op: &'static str,
        /// What is wrong and what to change.
        message: String,
    },

    /// A receive buffer is smaller than the incoming message. The message was
    /// consumed (its data truncated), so the sender does not hang.
    #[error(
        "{op}: the message from rank {source_rank} (tag {tag}) is longer than the receive buffer of {got} elements: pass a buffer as long as the longest message, or use receive_vec"
    )]
    BufferTooSmall {
        /// The receive call.
        op: &'static str,
        /// The rank the message came from.
        source_rank: usize,
        /// The message tag.
        tag: i32,
        /// Elements in the buffer that was passed.
        got: usize,
    },

    /// An MPI call failed (a lost peer, an exhausted resource). The
    /// communicator's state is undefined afterwards: end the job
    /// ([`crate::spmd`] does).
    #[error("{call} failed: {message} (MPI error class {class})")]
    Mpi {
        /// The MPI function.
        call: &'static str,
        /// MPI's error class.
        class: i32,
        /// MPI's description of the error.
        message: String,
    },

    /// A count exceeds what one MPI call can carry (2^31 - 1 elements).
    #[error(
        "{op}: {count} elements exceed MPI's limit of 2147483647 per call: split the data into smaller messages"
    )]
    CountOverflow {
        /// The call that was made.
        op: &'static str,
        /// The count that was asked for.
        count: usize,
    },

    /// The reduction operation is not defined for the element type.
    #[error(
        "{op}: the {reduction} reduction is not defined for {dtype}: logical and bitwise reductions need integer elements"
    )]
    UnsupportedReduction {
        /// The collective that was called.
        op: &'static str,
        /// The reduction that was asked for (`BitAnd`, `LogicalOr`, ...).
        reduction: String,
        /// The element type.
        dtype: &'static str,
    },

    /// The ranks cannot form the requested process grid.
    #[error(
        "cannot form a {rows} x {cols} process grid from {ranks} ranks: rows x cols must equal the rank count ({ranks}); pass a grid whose rows x cols is {ranks} (`--grid`, or `ProcessGrid::square_ish` in code), or run with {want} ranks"
    )]
    GridShape {
        /// Ranks in the communicator.
        ranks: usize,
        /// Requested grid rows.
        rows: usize,
        /// Requested grid columns.
        cols: usize,
        /// rows x cols, the rank count that grid needs.
        want: usize,
    },

    /// Array shapes that do not fit together.
    #[error("{op}: shapes do not conform: expected {expected}, got {got}")]
    ShapeMismatch {
        /// The operation.
        op: &'static str,
        /// What the shapes must satisfy.
        expected: String,
        /// The shapes that were passed.
        got: String,
    },

    /// The operation has no implementation on the requested device yet.
    #[error("{op} is not available on {device}: {reason}")]
    Unsupported {
        /// The operation.
        op: &'static str,
        /// The device that was asked for.
        device: String,
        /// Why, and what to use instead.
        reason: String,
    },

    /// A GPU was asked for where none can be used.
    #[error("no usable CUDA GPU: {reason}")]
    NoGpu {
        /// Why no GPU can be used (no driver, no device, ordinal out of range).
        reason: String,
    },

    /// A CUDA driver call failed.
    #[error("CUDA driver call {call} failed: {message}")]
    Cuda {
        /// The driver call.
        call: &'static str,
        /// The driver's error message.
        message: String,
    },

    /// NVRTC, the CUDA run-time compiler the kernels need, cannot be loaded.
    #[error(
        "NVRTC, the CUDA run-time compiler, is not available ({reason}): install the CUDA toolkit, or run `pip install nvidia-cuda-nvrtc-cu12` and add its nvidia/cuda_nvrtc/lib folder to LD_LIBRARY_PATH (or set TESSERA_NVRTC_LIB to the full path of libnvrtc.so.12); scripts/setup.sh does this"
    )]
    NvrtcMissing {
        /// What was tried.
        reason: String,
    },

    /// A kernel file did not compile. A bug in Tessera, or an NVRTC too old
    /// for the architecture: the log says which.
    #[error("compiling kernels/{kernel}.cu for {arch} failed: {message}\n{log}")]
    KernelCompile {
        /// The kernel file (without `.cu`).
        kernel: &'static str,
        /// The target architecture (`sm_90`).
        arch: String,
        /// NVRTC's error.
        message: String,
        /// NVRTC's compiler log.
        log: String,
    },

    /// Loading or launching a kernel failed.
    #[error("kernel {kernel}: {call} failed: {message}")]
    Kernel {
        /// The kernel (or kernel file) concerned.
        kernel: String,
        /// The driver call that failed.
        call: &'static str,
        /// The driver's message.
        message: String,
    },

    /// An input file is unreadable or malformed.
    #[error("{path}: {message}")]
    Input {
        /// The file.
        path: String,
        /// What is wrong with it and what to change.
        message: String,
    },

    /// An operating-system I/O error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A trace could not be encoded or decoded (a bug: please report it).
    #[error("trace: {0}")]
    Trace(String),

    /// An error of the program that uses Tessera: its message and, where
    /// there is one, the error that caused it. Made by `?` on a `String`,
    /// `&str`, parse error or boxed error, or by [`Error::msg`] and
    /// [`Error::user`].
    #[error("{}", user_message(message, source.as_deref()))]
    User {
        /// What the program was doing, or what went wrong.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

    /// Another rank reported an error in the same step; this rank stopped too.
    #[error("{op}: {message}")]
    Remote {
        /// The call in which the remote error was noticed.
        op: &'static str,
        /// Which rank failed and why.
        message: String,
    },
}

impl Error {
    /// Shorthand for an [`Error::InvalidArgument`].
    pub(crate) fn invalid(op: &'static str, message: impl Into<String>) -> Self {
        Error::InvalidArgument {
            op,
            message: message.into(),
        }
    }

    /// The same error again, for a request that reports one failure twice
    /// (from `test`, then from `wait`).
    pub(crate) fn replay(&self) -> Self {
        match self {
            Error::Mpi {
                call,
                class,
                message,
            } => Error::Mpi {
                call,
                class: *class,
                message: message.clone(),
            },
            other => Error::Remote {
                op: "request",
                message: other.to_string(),
            },
        }
    }

    /// A program's own error with this message ([`Error::User`]).
    pub fn msg(message: impl Into<String>) -> Self {
        Error::User {
            message: message.into(),
            source: None,
        }
    }

    /// A program's own error: what it was doing (`context`) and the error
    /// that stopped it ([`Error::User`]).
    pub fn user(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Error::User {
            message: context.into(),
            source: Some(source.into()),
        }
    }

    /// Shorthand for an [`Error::Io`] with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

impl From<std::io::Error> for Error {
    /// An I/O error without context; prefer [`Error::io`] where the file or
    /// the step is known.
    fn from(source: std::io::Error) -> Self {
        Error::Io {
            context: "I/O error".into(),
            source,
        }
    }
}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Error::msg(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Error::msg(message)
    }
}

impl From<Box<dyn std::error::Error + Send + Sync + 'static>> for Error {
    /// Keeps the error as the source (for `source()` and downcasting), with
    /// no message of its own: it displays as the boxed error does.
    fn from(source: Box<dyn std::error::Error + Send + Sync + 'static>) -> Self {
        Error::User {
            message: String::new(),
            source: Some(source),
        }
    }
}

/// How an [`Error::User`] reads: `message: source`, or whichever of the
/// two there is.
fn user_message(message: &str, source: Option<&(dyn std::error::Error + Send + Sync)>) -> String {
    match (message.is_empty(), source) {
        (_, None) => message.to_string(),
        (true, Some(s)) => s.to_string(),
        (false, Some(s)) => format!("{message}: {s}"),
    }
}

/// `?` on the standard library's parse errors gives an [`Error::User`]
/// carrying the parser's message.
macro_rules! user_error_from {
    ($($t:ty),+) => {
        $(impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::msg(e.to_string())
            }
        })+
    };
}

user_error_from!(
    std::num::ParseIntError,
    std::num::ParseFloatError,
    std::str::ParseBoolError,
    std::string::FromUtf8Error,
    std::str::Utf8Error,
    std::fmt::Error
);
