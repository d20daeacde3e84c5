//! Progress bars for long work (import, verify), drawn on standard error only when it is a
//! terminal: piped or redirected runs print nothing extra.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar counting to `len` in `unit` (`rows`, `bytes`), hidden unless stderr is a terminal.
pub fn bar(len: Option<u64>, what: &'static str, unit: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let template = match (len, unit) {
        (Some(_), "bytes") => "{msg} [{bar:30}] {bytes}/{total_bytes} ({eta})".to_string(),
        (Some(_), _) => format!("{{msg}} [{{bar:30}}] {{pos}}/{{len}} {unit} ({{eta}})"),
        (None, _) => format!("{{spinner}} {{msg}} {{pos}} {unit}"),
    };
    let style = ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr())
        .with_style(style)
        .with_message(what)
}
