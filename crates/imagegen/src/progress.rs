//! Progress as a stream: [`channel`] gives a [`ProgressSink`] that forwards every
//! [`ProgressEvent`] into a Tokio channel, so a UI can read them on its own task.
//!
//! ```
//! use imagegen::progress;
//! use imagegen::{JobState, ProgressEvent, ProgressSink};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let (sink, mut events) = progress::channel();
//! sink.report(ProgressEvent::new("kolbo", "gen_1", JobState::Running, Some(40), Default::default()));
//! drop(sink);
//! while let Some(event) = events.recv().await {
//!     println!("{} {}: {} {:?}%", event.provider, event.job_id, event.state, event.percent);
//! }
//! # }
//! ```

use imagegen_core::{ProgressEvent, ProgressSink};
use tokio::sync::mpsc;

/// A [`ProgressSink`] that sends every event into a channel; see [`channel`].
#[derive(Debug, Clone)]
pub struct ChannelSink {
    sender: mpsc::UnboundedSender<ProgressEvent>,
}

impl ProgressSink for ChannelSink {
    fn report(&self, event: ProgressEvent) {
        // A receiver that went away no longer wants progress; that is not an error.
        let _ = self.sender.send(event);
    }
}

/// A sink and the stream of events sent into it. The stream ends when every clone of
/// the sink is dropped.
pub fn channel() -> (ChannelSink, mpsc::UnboundedReceiver<ProgressEvent>) {
    let (sender, receiver) = mpsc::unbounded_channel();
    (ChannelSink { sender }, receiver)
}
