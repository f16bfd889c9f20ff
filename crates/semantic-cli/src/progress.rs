//! A progress bar for model loading, shown only on a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar that `callback` drives with fractions in [0, 1].
pub struct LoadProgress {
    bar: ProgressBar,
}

impl LoadProgress {
    pub fn new(what: &str) -> Self {
        let bar = if std::io::stderr().is_terminal() {
            ProgressBar::new(100)
        } else {
            ProgressBar::hidden()
        };
        let style = ProgressStyle::with_template("{msg} [{bar:30}] {percent:>3}%")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(format!("loading {what}"));
        Self { bar }
    }

    /// A callback for the engine's model loader.
    pub fn callback(&self) -> impl FnMut(f32) + 'static {
        let bar = self.bar.clone();
        move |p| bar.set_position((p.clamp(0.0, 1.0) * 100.0) as u64)
    }

    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}
