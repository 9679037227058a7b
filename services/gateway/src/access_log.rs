//! The access log: one line per request with route, instance, status and timing. In JSON mode
//! (staging, prod) lines are formatted into a buffer without allocating and handed in batches
//! (every 100 ms, or at 64 KiB) to a thread that writes them ([`writer`]), so logging costs no
//! system call per request and a slow reader of the output does not hold requests up; the
//! line has the shape of the other JSON logs. In dev it goes through `tracing` like every other
//! line.

mod writer;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use writer::Writer;

/// One request's line.
#[derive(Debug)]
pub struct Entry<'a> {
    /// An id the gateway accepted or made (`kit::request_id::acceptable`): nothing in it needs
    /// escaping.
    pub request_id: &'a str,
    /// A method: a token, nothing in it needs escaping.
    pub method: &'a str,
    pub path: &'a str,
    pub route: Option<&'a str>,
    pub instance: Option<SocketAddr>,
    pub status: u16,
    pub elapsed: Duration,
}

#[derive(Debug, Default)]
struct Buffer {
    lines: Vec<u8>,
    /// The second `stamp` was formatted for, and `YYYY-MM-DDTHH:MM:SS`.
    second: u64,
    stamp: String,
    /// The instance of the last line, and its text: a route's lines name its few instances
    /// over and over.
    instance: Option<(SocketAddr, String)>,
    /// The writer thread; without one (it could not be started), lines are written in place.
    writer: Option<Writer>,
}

#[derive(Debug)]
pub struct AccessLog {
    mode: Mode,
    buffer: Mutex<Buffer>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Off,
    Tracing,
    Json,
}

const FLUSH_AT: usize = 64 * 1024;
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

impl AccessLog {
    /// Batched JSON if `json`, else through `tracing`; off if the log filter leaves out `access`.
    pub fn new(json: bool) -> Self {
        let mode = match (tracing::enabled!(target: "access", tracing::Level::INFO), json) {
            (false, _) => Mode::Off,
            (true, false) => Mode::Tracing,
            (true, true) => Mode::Json,
        };
        if mode == Mode::Json {
            return Self::json_to(Box::new(std::io::stderr()));
        }
        Self { mode, buffer: Mutex::default() }
    }

    /// JSON lines to `sink`, written by a thread of their own.
    fn json_to(sink: Box<dyn Write + Send>) -> Self {
        let writer = Writer::start(sink)
            .inspect_err(|error| tracing::warn!(%error, "no access log thread: lines are written in place"))
            .ok();
        Self { mode: Mode::Json, buffer: Mutex::new(Buffer { writer, ..Buffer::default() }) }
    }

    pub fn record(&self, e: &Entry<'_>) {
        match self.mode {
            Mode::Off => {}
            Mode::Tracing => tracing::info!(
                target: "access",
                request_id = e.request_id,
                method = e.method,
                path = e.path,
                route = e.route.unwrap_or("-"),
                instance = e.instance.map(|i| i.to_string()).as_deref().unwrap_or("-"),
                status = e.status,
                elapsed_ms = e.elapsed.as_secs_f64() * 1000.0,
                "access"
            ),
            Mode::Json => {
                let mut b = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
                b.append(e);
                if b.lines.len() >= FLUSH_AT {
                    b.write_out();
                }
            }
        }
    }

    /// Hands what is buffered to the writer.
    pub fn flush(&self) {
        if self.mode == Mode::Json {
            self.buffer.lock().unwrap_or_else(|p| p.into_inner()).write_out();
        }
    }

    /// Writes what is buffered and waits until every line so far is written: for the end of
    /// the process.
    pub fn finish(&self) {
        if self.mode == Mode::Json {
            let mut b = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
            b.write_out();
            if let Some(writer) = &b.writer {
                writer.sync();
            }
        }
    }
}

impl Buffer {
    fn write_out(&mut self) {
        if self.lines.is_empty() {
            return;
        }
        match &self.writer {
            Some(writer) => writer.hand_over(&mut self.lines),
            None => {
                let _ = std::io::stderr().lock().write_all(&self.lines);
                self.lines.clear();
            }
        }
    }

    fn append(&mut self, e: &Entry<'_>) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        if self.second != now.as_secs() || self.stamp.is_empty() {
            self.second = now.as_secs();
            self.stamp = chrono::DateTime::from_timestamp(now.as_secs() as i64, 0)
                .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
                .unwrap_or_default();
        }
        let out = &mut self.lines;
        out.extend_from_slice(b"{\"timestamp\":\"");
        out.extend_from_slice(self.stamp.as_bytes());
        out.push(b'.');
        decimal(out, u64::from(now.subsec_micros()), 6);
        out.extend_from_slice(b"Z\",\"level\":\"INFO\",\"fields\":{\"message\":\"access\",\"request_id\":\"");
        verbatim(out, e.request_id);
        out.extend_from_slice(b"\",\"method\":\"");
        verbatim(out, e.method);
        out.extend_from_slice(b"\",\"path\":\"");
        escape(out, e.path);
        out.extend_from_slice(b"\",\"route\":\"");
        escape(out, e.route.unwrap_or("-"));
        out.extend_from_slice(b"\",\"instance\":\"");
        match e.instance {
            Some(at) => {
                let known = self.instance.as_ref().is_some_and(|(addr, _)| *addr == at);
                if !known {
                    self.instance = Some((at, at.to_string()));
                }
                if let Some((_, text)) = &self.instance {
                    out.extend_from_slice(text.as_bytes());
                }
            }
            None => out.push(b'-'),
        }
        out.extend_from_slice(b"\",\"status\":");
        decimal(out, u64::from(e.status), 1);
        let micros = u64::try_from(e.elapsed.as_micros()).unwrap_or(u64::MAX);
        out.extend_from_slice(b",\"elapsed_ms\":");
        decimal(out, micros / 1000, 1);
        out.push(b'.');
        decimal(out, micros % 1000, 3);
        out.extend_from_slice(b"},\"target\":\"access\"}\n");
    }
}

/// The decimal digits of 0 to 99, two by two.
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// Appends `n` in decimal, zero-padded to at least `width` (at most 20) digits, two digits a
/// step (no formatting machinery: this runs for every request).
pub(crate) fn decimal(out: &mut Vec<u8>, mut n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut at = digits.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else if n > 0 || at == digits.len() {
        at -= 1;
        digits[at] = b'0' + n as u8;
    }
    // The digits left of `at` are zeros already: the padding.
    out.extend_from_slice(&digits[at.min(digits.len().saturating_sub(width))..]);
}

/// Appends `s`, known to need no escape, as the inside of a JSON string (checked in debug
/// builds and tests).
fn verbatim(out: &mut Vec<u8>, s: &str) {
    debug_assert!(s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\'), "{s:?} needs escaping");
    out.extend_from_slice(s.as_bytes());
}

/// Appends `s` as the inside of a JSON string.
fn escape(out: &mut Vec<u8>, s: &str) {
    // A fold with no early exit, so that the check runs over whole vectors of bytes: nearly
    // every field needs no escape, and this runs four times per request.
    let needs = s.bytes().fold(false, |needs, b| needs | (b < 0x20) | (b == b'"') | (b == b'\\'));
    if !needs {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0..0x20 => {
                let _ = write!(out, "\\u{b:04x}");
            }
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;
    use std::sync::mpsc;

    use super::*;

    /// Records lines with the ids `0..lines`, then flushes.
    fn record(log: &AccessLog, lines: usize) {
        for i in 0..lines {
            let id = i.to_string();
            log.record(&Entry {
                request_id: &id,
                method: "GET",
                path: "/",
                route: Some("web"),
                instance: None,
                status: 200,
                elapsed: Duration::ZERO,
            });
        }
        log.flush();
    }

    /// The ids of the lines in `text`, in order.
    fn ids(text: &[u8]) -> Vec<usize> {
        String::from_utf8_lossy(text)
            .lines()
            .map(|l| {
                let line: serde_json::Value = serde_json::from_str(l).expect("each line is JSON");
                line["fields"]["request_id"].as_str().and_then(|id| id.parse().ok()).expect("an id")
            })
            .collect()
    }

    #[test]
    fn a_pipe_no_one_reads_holds_up_no_request_until_the_backlog_is_full_and_no_line_is_lost() {
        let (mut reader, sink) = std::io::pipe().expect("a pipe");
        let log = AccessLog::json_to(Box::new(sink));
        // About 2 MiB: thirty times what a pipe holds, half the backlog.
        let lines = 10_000;
        let (done, recorded) = mpsc::channel();
        let recorder = std::thread::spawn(move || {
            record(&log, lines);
            let _ = done.send(());
            log
        });
        recorded.recv_timeout(Duration::from_secs(30)).expect("the lines were recorded while no one read");
        // Dropped, the log's thread writes what is queued and closes the pipe.
        drop(recorder.join().expect("the recorder"));
        let mut text = Vec::new();
        reader.read_to_end(&mut text).expect("read");
        assert_eq!(ids(&text), (0..lines).collect::<Vec<_>>());
    }

    #[test]
    fn more_lines_than_the_backlog_holds_all_reach_a_slow_reader_in_order() {
        let (mut reader, sink) = std::io::pipe().expect("a pipe");
        let log = AccessLog::json_to(Box::new(sink));
        // About 8 MiB: twice the backlog, so handing over waits for the reader.
        let lines = 40_000;
        let recorder = std::thread::spawn(move || record(&log, lines));
        let mut text = Vec::new();
        reader.read_to_end(&mut text).expect("read");
        recorder.join().expect("the recorder");
        assert_eq!(ids(&text), (0..lines).collect::<Vec<_>>());
    }

    /// A file the log writes to only when the test lets it: it says when a write has begun,
    /// then waits for the word to go on, and notes each write it completed.
    struct Gated {
        file: std::fs::File,
        begun: mpsc::Sender<()>,
        go: mpsc::Receiver<()>,
        events: mpsc::Sender<&'static str>,
    }

    impl Write for Gated {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let _ = self.begun.send(());
            let _ = self.go.recv();
            self.file.write_all(bytes)?;
            let _ = self.events.send("written");
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.file.flush()
        }
    }

    #[test]
    fn finish_returns_only_after_every_line_recorded_is_written() {
        let path = std::env::temp_dir().join(format!("access-{}.log", uuid::Uuid::new_v4().simple()));
        let ((begun, has_begun), (go, gate), (events, happened)) =
            (mpsc::channel(), mpsc::channel(), mpsc::channel());
        let file = std::fs::File::create(&path).expect("a file");
        let log = AccessLog::json_to(Box::new(Gated { file, begun, go: gate, events: events.clone() }));
        record(&log, 100);
        let finishing = std::thread::spawn(move || {
            log.finish();
            let _ = events.send("finished");
        });
        has_begun.recv_timeout(Duration::from_secs(30)).expect("the write began");
        // The write is held: finish must still be waiting for it.
        assert!(
            happened.recv_timeout(Duration::from_millis(200)).is_err(),
            "finish returned before the write"
        );
        go.send(()).expect("the writer waits");
        finishing.join().expect("finish");
        assert_eq!(happened.try_iter().collect::<Vec<_>>(), ["written", "finished"]);
        let written = std::fs::read(&path).expect("the file").iter().filter(|&&b| b == b'\n').count();
        assert_eq!(written, 100);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn decimal_writes_every_number_as_format_does_padded_to_its_width() {
        let mut samples: Vec<u64> = (0..1_000).collect();
        samples.extend([9_999, 10_000, 65_535, 999_999, 1_000_000, 123_456_789, u64::MAX]);
        for n in samples {
            for width in [1, 3, 6] {
                let mut out = Vec::new();
                decimal(&mut out, n, width);
                assert_eq!(String::from_utf8(out).expect("digits"), format!("{n:0width$}"), "{n} to {width}");
            }
        }
    }

    #[test]
    fn a_line_is_valid_json_with_every_field_and_strange_paths_escaped() {
        let mut b = Buffer::default();
        b.append(&Entry {
            request_id: "abc",
            method: "GET",
            path: "/a\"b\\c\u{1}",
            route: Some("web"),
            instance: Some(([10, 0, 0, 2], 8080).into()),
            status: 503,
            elapsed: Duration::from_micros(12_345),
        });
        for (request_id, port) in [("x", 9), ("y", 8080), ("z", 8080)] {
            b.append(&Entry {
                request_id,
                method: "GET",
                path: "/",
                route: Some("web"),
                instance: Some((std::net::Ipv6Addr::LOCALHOST, port).into()),
                status: 200,
                elapsed: Duration::ZERO,
            });
        }
        b.append(&Entry {
            request_id: "def",
            method: "POST",
            path: "/",
            route: None,
            instance: None,
            status: 404,
            elapsed: Duration::ZERO,
        });
        let text = String::from_utf8(b.lines).expect("utf-8");
        let lines: Vec<serde_json::Value> =
            text.lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect();
        let f = &lines[0]["fields"];
        assert_eq!(f["path"], "/a\"b\\c\u{1}");
        assert_eq!((f["route"].as_str(), f["instance"].as_str()), (Some("web"), Some("10.0.0.2:8080")));
        assert_eq!((f["status"].as_u64(), f["elapsed_ms"].as_f64()), (Some(503), Some(12.345)));
        assert_eq!(lines[0]["target"], "access");
        assert!(lines[0]["timestamp"].as_str().is_some_and(|t| t.len() == 27 && t.ends_with('Z')));
        let instances: Vec<_> = lines[1..4].iter().map(|l| l["fields"]["instance"].as_str()).collect();
        assert_eq!(instances, [Some("[::1]:9"), Some("[::1]:8080"), Some("[::1]:8080")]);
        assert_eq!(
            (lines[4]["fields"]["route"].as_str(), lines[4]["fields"]["status"].as_u64()),
            (Some("-"), Some(404))
        );
    }
}
