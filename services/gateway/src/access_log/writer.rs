//! The access log's writer: full buffers of lines are written on a thread of their own, so that
//! a slow reader of the gateway's output (a log driver in blocking mode, a pipe no one drains
//! for a while) holds up the log and not the requests, until a bounded backlog is full. Past it,
//! handing a buffer over waits: a line is never dropped.

use std::io::Write;
use std::sync::mpsc::{self, Receiver, SyncSender};

/// Buffers waiting to be written, at most: with 64 KiB buffers, 4 MiB, about half a second of
/// lines at 30,000 requests a second.
const BACKLOG: usize = 64;

#[derive(Debug)]
enum Job {
    Lines(Vec<u8>),
    /// Answered once everything handed over before it is written.
    Sync(SyncSender<()>),
}

/// The requests' side of the thread. Dropping it lets the thread write what is queued and end.
#[derive(Debug)]
pub struct Writer {
    jobs: SyncSender<Job>,
    /// Buffers the thread has written and emptied, for reuse.
    spare: Receiver<Vec<u8>>,
}

impl Writer {
    /// Starts the thread that writes to `sink`.
    pub fn start(sink: Box<dyn Write + Send>) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::sync_channel(BACKLOG);
        let (back, spare) = mpsc::sync_channel(BACKLOG);
        std::thread::Builder::new().name("access-log".into()).spawn(move || run(sink, &queue, &back))?;
        Ok(Self { jobs, spare })
    }

    /// Hands `lines` over to be written, leaving an empty buffer (a written one if there is
    /// one) in its place; waits only while the backlog is full.
    pub fn hand_over(&self, lines: &mut Vec<u8>) {
        let empty = self.spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(lines.capacity()));
        let full = std::mem::replace(lines, empty);
        // An error means the thread is gone (its sink panicked): the lines go with it, as a
        // write to a closed output's would.
        let _ = self.jobs.send(Job::Lines(full));
    }

    /// Waits until everything handed over so far is written.
    pub fn sync(&self) {
        let (done, written) = mpsc::sync_channel(1);
        if self.jobs.send(Job::Sync(done)).is_ok() {
            let _ = written.recv();
        }
    }
}

fn run(mut sink: Box<dyn Write + Send>, queue: &Receiver<Job>, back: &SyncSender<Vec<u8>>) {
    for job in queue {
        match job {
            Job::Lines(mut lines) => {
                // Nowhere to report a failed write of the log itself; the next buffer tries
                // again.
                let _ = sink.write_all(&lines).and_then(|()| sink.flush());
                lines.clear();
                let _ = back.try_send(lines);
            }
            Job::Sync(done) => {
                let _ = done.send(());
            }
        }
    }
}
