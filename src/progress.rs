//! Terminal output of a run: the progress bar and a log writer that never draws over it.
//!
//! The runner shows a bar (only when stderr is a terminal and there are several dates); log lines
//! go through [`LogWriter`], which suspends the bar while a line is written, so warnings are not
//! printed onto it. The run's job, as-of date and run id are remembered ([`set_context`]) so that
//! the binary can put them on its final error line.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

static BAR: Mutex<Option<indicatif::ProgressBar>> = Mutex::new(None);
static CONTEXT: Mutex<RunContext> = Mutex::new(RunContext {
    job: None,
    as_of: None,
    run_id: None,
});

/// What the current run is about, for the final error line of a JSON log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunContext {
    /// The job's name; `None` when not known (yet).
    pub job: Option<String>,
    /// The as-of date being computed, `YYYY-MM-DD`; `None` until a single date is being computed.
    pub as_of: Option<String>,
    /// The run's id; `None` before the run has started.
    pub run_id: Option<String>,
}

/// Remember the fields of `ctx` that are set.
pub fn set_context(ctx: RunContext) {
    let mut c = CONTEXT.lock().unwrap_or_else(|e| e.into_inner());
    if ctx.job.is_some() {
        c.job = ctx.job;
    }
    if ctx.as_of.is_some() {
        c.as_of = ctx.as_of;
    }
    if ctx.run_id.is_some() {
        c.run_id = ctx.run_id;
    }
}

/// The remembered context.
pub fn context() -> RunContext {
    CONTEXT.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// A progress bar over `n` dates: drawn only when stderr is a terminal and `n > 1`. Log lines
/// written through [`LogWriter`] meanwhile appear above it.
pub fn bar(n: usize) -> indicatif::ProgressBar {
    let bar = if n > 1 && std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(n as u64);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} as of {msg} ({eta})")
        {
            bar.set_style(style);
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    *BAR.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.clone());
    bar
}

/// Forget the bar once it is finished.
pub fn clear_bar() {
    *BAR.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

/// Standard error, written with the progress bar suspended (a `tracing_subscriber` writer).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bar = BAR.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match bar {
            Some(b) if !b.is_hidden() => b.suspend(|| std::io::stderr().write_all(buf))?,
            _ => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        LogWriter
    }
}

/// Whether log lines may carry ANSI colours: stderr is a terminal and `NO_COLOR` is not set.
pub fn use_colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
