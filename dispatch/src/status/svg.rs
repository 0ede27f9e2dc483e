//! Small inline SVG line charts (no script, no external file): a time axis over the chart
//! window, a value axis from zero to the largest value, one polyline per series.

use std::fmt::Write as _;

use super::html::escape;

/// Most points drawn per series (more are averaged into this many buckets).
pub const MAX_POINTS: usize = 300;

const W: f64 = 360.0;
const H: f64 = 132.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 32.0;
const BOTTOM: f64 = 18.0;
const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

/// One line of a chart.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    /// Legend.
    pub label: &'a str,
    /// `(unix time, value)` in time order.
    pub points: &'a [(f64, f64)],
}

/// Averages `points` into at most `n` buckets of equal time over `[t0, t1]`.
pub fn downsample(points: &[(f64, f64)], t0: f64, t1: f64, n: usize) -> Vec<(f64, f64)> {
    if points.len() <= n || t1 <= t0 || n == 0 {
        return points.to_vec();
    }
    let width = (t1 - t0) / n as f64;
    let mut sums = vec![(0.0, 0.0, 0u32); n];
    for &(t, v) in points {
        let i = (((t - t0) / width).floor().max(0.0) as usize).min(n - 1);
        sums[i].0 += t;
        sums[i].1 += v;
        sums[i].2 += 1;
    }
    sums.into_iter()
        .filter(|s| s.2 > 0)
        .map(|(t, v, c)| (t / f64::from(c), v / f64::from(c)))
        .collect()
}

/// A chart of `lines` over `[t0, t1]`; `fmt` writes values on the axis.
pub fn chart(
    title: &str,
    lines: &[Line<'_>],
    t0: f64,
    t1: f64,
    fmt: &dyn Fn(f64) -> String,
) -> String {
    let mut out = format!(
        "<svg class=chart xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" \
         width=\"{W}\" height=\"{H}\" role=img aria-label=\"{}\">",
        escape(title)
    );
    let _ = write!(
        out,
        "<text x=\"{LEFT}\" y=\"13\" class=t>{}</text>",
        escape(title)
    );
    let max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    let top = if max > 0.0 { max } else { 1.0 };
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let x = |t: f64| LEFT + ((t - t0) / (t1 - t0).max(1.0)).clamp(0.0, 1.0) * pw;
    let y = |v: f64| TOP + ph - (v / top).clamp(0.0, 1.0) * ph;
    let _ = write!(
        out,
        "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{pw}\" height=\"{ph}\" class=f />\
         <text x=\"{}\" y=\"{}\" class=a text-anchor=end>{}</text>\
         <text x=\"{}\" y=\"{}\" class=a text-anchor=end>0</text>\
         <text x=\"{LEFT}\" y=\"{}\" class=a>{}</text>\
         <text x=\"{}\" y=\"{}\" class=a text-anchor=end>now</text>",
        LEFT - 4.0,
        TOP + 8.0,
        escape(&fmt(top)),
        LEFT - 4.0,
        TOP + ph,
        H - 4.0,
        escape(&format!("-{}", lander_spool::human::duration(t1 - t0))),
        W - RIGHT,
        H - 4.0,
    );
    let mut any = false;
    let mut lx = LEFT;
    for (i, line) in lines.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let pts = downsample(line.points, t0, t1, MAX_POINTS);
        if !pts.is_empty() {
            any = true;
            let coords: Vec<String> = pts
                .iter()
                .filter(|p| p.1.is_finite())
                .map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v)))
                .collect();
            let _ = write!(
                out,
                "<polyline fill=none stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\" />",
                coords.join(" ")
            );
        }
        let _ = write!(
            out,
            "<text x=\"{lx:.0}\" y=\"26\" class=l fill=\"{colour}\">&#9632; {}</text>",
            escape(line.label)
        );
        lx += 14.0 + 6.0 * line.label.chars().count() as f64;
    }
    if !any {
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" class=a text-anchor=middle>no history yet</text>",
            LEFT + pw / 2.0,
            TOP + ph / 2.0
        );
    }
    out + "</svg>"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_points_are_averaged_into_buckets_and_few_are_kept() {
        let pts: Vec<(f64, f64)> = (0..1000).map(|i| (f64::from(i), 2.0)).collect();
        let d = downsample(&pts, 0.0, 1000.0, 100);
        assert_eq!(d.len(), 100);
        assert!(d.iter().all(|p| (p.1 - 2.0).abs() < 1e-9));
        assert_eq!(downsample(&pts[..10], 0.0, 1000.0, 100).len(), 10);
    }

    #[test]
    fn a_chart_escapes_its_labels_and_says_when_it_has_nothing() {
        let svg = chart(
            "a<b",
            &[Line {
                label: "x&y",
                points: &[],
            }],
            0.0,
            10.0,
            &|v| format!("{v}"),
        );
        assert!(svg.contains("a&lt;b") && svg.contains("x&amp;y"));
        assert!(svg.contains("no history yet"));
        assert!(!svg.contains("<b"));
    }
}
