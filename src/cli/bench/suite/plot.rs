//! SVG plots of the suite's report (plotters, SVG backend only): scrub throughput against
//! threads, throughput against mean packet size, live drops against the offered rate.

use std::path::Path;

use plotters::prelude::*;

use super::report::Report;

/// One line of a chart: a name and its points.
type Series = (String, Vec<(f64, f64)>);

/// Scrub Mpps against threads, one line per trace; traceanon flat, for comparison.
pub fn threads(r: &Report, path: &Path) -> anyhow::Result<()> {
    let mut series = Vec::new();
    for g in r.groups.iter().filter(|g| g.name.starts_with("scrub")) {
        let ours: Vec<(f64, f64)> = g
            .cases
            .iter()
            .filter_map(|c| c.threads.map(|t| (t as f64, c.mpps)))
            .collect();
        let max_t = ours.iter().map(|p| p.0).fold(1.0, f64::max);
        if let Some(peer) = g.cases.iter().find(|c| c.name == "traceanon") {
            series.push((
                format!("traceanon, {}", trace_of(&g.name)),
                vec![(1.0, peer.mpps), (max_t, peer.mpps)],
            ));
        }
        series.push((format!("lander scrub, {}", trace_of(&g.name)), ours));
    }
    chart(
        path,
        "Scrub throughput against threads",
        "threads",
        "Mpps",
        series,
    )
}

/// Mpps against the input's mean packet size, one line per tool present in several groups.
pub fn packet_size(r: &Report, path: &Path) -> anyhow::Result<()> {
    let mut series: Vec<Series> = Vec::new();
    for g in &r.groups {
        if g.name.contains("durable") || g.packets == 0 {
            continue;
        }
        let size = g.bytes as f64 / g.packets as f64;
        for c in &g.cases {
            let name = format!("{} ({})", c.name, g.name.split(' ').next().unwrap_or(""));
            match series.iter_mut().find(|s| s.0 == name) {
                Some(s) => s.1.push((size, c.mpps)),
                None => series.push((name, vec![(size, c.mpps)])),
            }
        }
    }
    series.retain(|s| s.1.len() > 1);
    for s in &mut series {
        s.1.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    chart(
        path,
        "Throughput against mean packet size (bytes per record, file header included)",
        "mean bytes per packet",
        "Mpps",
        series,
    )
}

/// Packets not written, percent of offered (the worst round), against the offered rate (the
/// median); one line per tool and traffic mix.
pub fn live_drops(r: &Report, path: &Path) -> anyhow::Result<()> {
    let Some(live) = &r.live else {
        return Ok(());
    };
    let mut series: Vec<Series> = Vec::new();
    for p in &live.points {
        let name = format!("{}, {:?}", p.tool, p.traffic).to_lowercase();
        let point = (p.offered_pps / 1e6, 100.0 - p.written_pct_min);
        match series.iter_mut().find(|s| s.0 == name) {
            Some(s) => s.1.push(point),
            None => series.push((name, vec![point])),
        }
    }
    for s in &mut series {
        s.1.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    chart(
        path,
        "Live capture: packets lost against offered rate",
        "offered Mpps",
        "% not written",
        series,
    )
}

fn trace_of(group: &str) -> &str {
    group.rsplit(' ').next().unwrap_or(group)
}

/// A line chart with points marked, axes from 0 to a little past the largest value.
fn chart(path: &Path, title: &str, x: &str, y: &str, series: Vec<Series>) -> anyhow::Result<()> {
    let max = |f: fn(&(f64, f64)) -> f64| {
        series
            .iter()
            .flat_map(|s| s.1.iter().map(f))
            .fold(0.0, f64::max)
    };
    let (xmax, ymax) = (max(|p| p.0) * 1.1, max(|p| p.1) * 1.15);
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let mut c = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..xmax.max(1.0), 0.0..ymax.max(0.01))
        .map_err(plot_err)?;
    c.configure_mesh()
        .x_desc(x)
        .y_desc(y)
        .draw()
        .map_err(plot_err)?;
    for (i, (name, points)) in series.into_iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        c.draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(plot_err)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        c.draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 3, color.filled())),
        )
        .map_err(plot_err)?;
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(plot_err)?;
    root.present().map_err(plot_err)?;
    Ok(())
}

fn plot_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("plotting: {e}")
}
