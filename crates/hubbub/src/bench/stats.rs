//! Measurement helpers: latency histograms (microseconds), process CPU and memory
//! from `/proc`.

use std::time::Instant;

use serde_json::{Value, json};

/// Latencies in microseconds, 1 µs to 60 s, 3 significant digits.
pub(crate) type Hist = hdrhistogram::Histogram<u64>;

pub(crate) fn new_hist() -> Hist {
    Hist::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// Records a latency, clamped into the histogram's range.
#[inline]
pub(crate) fn record(h: &mut Hist, micros: u64) {
    h.saturating_record(micros.max(1));
}

fn ms(us: u64) -> f64 {
    super::r3(us as f64 / 1000.0)
}

/// `{count, p50, p90, p99, p999, max, mean}` in milliseconds.
pub(crate) fn summary(h: &Hist) -> Value {
    if h.is_empty() {
        return json!({"count": 0, "p50": null, "p90": null, "p99": null, "p999": null, "max": null, "mean": null});
    }
    json!({
        "count": h.len(),
        "p50": ms(h.value_at_quantile(0.50)),
        "p90": ms(h.value_at_quantile(0.90)),
        "p99": ms(h.value_at_quantile(0.99)),
        "p999": ms(h.value_at_quantile(0.999)),
        "max": ms(h.max()),
        "mean": super::r3(h.mean() / 1000.0),
    })
}

/// p99 in milliseconds (infinite when nothing was recorded).
pub(crate) fn p99_ms(h: &Hist) -> f64 {
    if h.is_empty() {
        f64::INFINITY
    } else {
        h.value_at_quantile(0.99) as f64 / 1000.0
    }
}

/// `p50 / p99 / p99.9 / max` in ms, for tables.
pub(crate) fn line(h: &Hist) -> String {
    if h.is_empty() {
        return "-".into();
    }
    format!(
        "{:.2} / {:.2} / {:.2} / {:.2}",
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.value_at_quantile(0.999) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    )
}

/// Resident memory of a process, from `/proc/<pid>/status` (`VmRSS`), in bytes.
pub(crate) fn rss_of(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// User + system CPU time of a process, in seconds.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; fields resume after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the full line (11 and 12 of `rest`).
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Some(ticks as f64 / if hz > 0 { hz as f64 } else { 100.0 })
}

/// CPU use of a process over a window, in percent of one core.
pub(crate) struct CpuMeter {
    pid: String,
    start: Instant,
    cpu: Option<f64>,
}

impl CpuMeter {
    pub fn start(pid: impl Into<String>) -> CpuMeter {
        let pid = pid.into();
        let cpu = cpu_seconds(&pid);
        CpuMeter {
            pid,
            start: Instant::now(),
            cpu,
        }
    }

    pub fn percent(&self) -> Option<f64> {
        let (before, now) = (self.cpu?, cpu_seconds(&self.pid)?);
        let wall = self.start.elapsed().as_secs_f64();
        (wall > 0.0).then(|| super::r1((now - before) / wall * 100.0))
    }
}

/// Busy and total jiffies of the whole machine, from the `cpu` line of `/proc/stat`.
fn machine_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let f: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …
    let total: u64 = f.iter().take(8).sum();
    let idle = f.get(3)? + f.get(4).unwrap_or(&0);
    Some((total - idle, total))
}

/// CPU use of the whole machine over a window (every process, ours included), in
/// percent of one core, and the 1-minute load average at the end: whether other
/// work shared the machine with the measurement.
pub(crate) struct MachineMeter {
    start: Option<(u64, u64)>,
}

impl MachineMeter {
    pub fn start() -> MachineMeter {
        MachineMeter {
            start: machine_jiffies(),
        }
    }

    pub fn busy_percent(&self) -> Option<f64> {
        let ((b0, t0), (b1, t1)) = (self.start?, machine_jiffies()?);
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        // available_parallelism honours our affinity mask; count every core instead.
        let cores = std::fs::read_to_string("/proc/stat")
            .map(|s| {
                s.lines()
                    .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
                    .count()
            })
            .unwrap_or(cores)
            .max(1);
        (t1 > t0).then(|| super::r1((b1 - b0) as f64 / (t1 - t0) as f64 * 100.0 * cores as f64))
    }
}

/// The 1-minute load average.
pub(crate) fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Sets bit `i` of a growable bitmap; returns whether it was already set.
#[inline]
pub(crate) fn set_bit(bits: &mut Vec<u64>, i: usize) -> bool {
    let (w, b) = (i / 64, i % 64);
    if bits.len() <= w {
        bits.resize(w + 1, 0);
    }
    let was = bits[w] & (1 << b) != 0;
    bits[w] |= 1 << b;
    was
}

#[cfg(test)]
fn get_bit(bits: &[u64], i: usize) -> bool {
    bits.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
}

/// Number of bits set in both bitmaps.
pub(crate) fn and_count(a: &[u64], b: &[u64]) -> u64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x & y).count_ones() as u64)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmaps() {
        let mut a = Vec::new();
        assert!(!set_bit(&mut a, 3));
        assert!(set_bit(&mut a, 3));
        assert!(!set_bit(&mut a, 200));
        assert!(get_bit(&a, 200) && !get_bit(&a, 199) && !get_bit(&a, 10_000));
        let mut b = Vec::new();
        set_bit(&mut b, 3);
        set_bit(&mut b, 4);
        assert_eq!(and_count(&a, &b), 1);
    }

    #[test]
    fn own_process_figures() {
        assert!(rss_of("self").unwrap() > 0);
        assert!(cpu_seconds("self").is_some());
    }
}
