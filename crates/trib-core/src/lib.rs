//! Shared vocabulary of Tributary: ids, diagnostics, durations, the clock and the
//! project settings.
//!
//! Every other crate depends on this one and this one depends on no other `trib-*`
//! crate. It must stay small: types and traits, no I/O beyond reading the settings
//! file, no heavy dependencies.
//!
//! ```text
//!   trib.toml ──► Settings ──► (binary merges env + flags) ──► passed down
//!   any check ──► Diagnostic { file, span, message, help } ──► rendered by the binary
//! ```

pub mod clock;
pub mod diagnostic;
pub mod duration;
pub mod settings;
pub mod status;

pub use clock::{Clock, ManualClock, SystemClock};
pub use diagnostic::{Diagnostic, Diagnostics, Location, Severity};
pub use duration::Duration;
pub use settings::{KafkaSettings, Settings};
pub use status::CertificationStatus;
