//! Metric charts: one per metric name, value by step, every run overlaid in its own colour,
//! drawn by plotters as inline SVG (no script, no font files). Only numbers are drawn inside
//! the SVG; names stay in the escaped HTML around it.

use plotters::prelude::*;
use registry_store::metrics::Metric;
use std::collections::BTreeMap;

/// Run colours, in order: distinguishable, and dark enough on white.
const PALETTE: [(u8, u8, u8); 6] = [
    (31, 119, 180),
    (214, 39, 40),
    (44, 160, 44),
    (148, 103, 189),
    (255, 127, 14),
    (23, 190, 207),
];

fn rgb(index: usize) -> RGBColor {
    let (r, g, b) = PALETTE[index % PALETTE.len()];
    RGBColor(r, g, b)
}

/// The colour of the `index`th run, as CSS (`#1f77b4`).
pub fn colour(index: usize) -> String {
    let (r, g, b) = PALETTE[index % PALETTE.len()];
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// One value of a chart, for the table under it.
pub struct Point {
    pub run: String,
    pub step: String,
    pub value: String,
}

pub struct Chart {
    pub name: String,
    /// Inline SVG (numbers only).
    pub svg: String,
    pub points: Vec<Point>,
}

/// A run's points of one metric: (step, value).
type Line = Vec<(f64, f64)>;

/// `(label, metrics)` per run → one chart per metric name, in name order.
pub fn charts(runs: &[(String, Vec<Metric>)]) -> Vec<Chart> {
    // name → run index → (step, value), in the order recorded.
    let mut by_name: BTreeMap<&str, BTreeMap<usize, Line>> = BTreeMap::new();
    for (index, (_, metrics)) in runs.iter().enumerate() {
        for metric in metrics {
            let Some(value) = metric.value.filter(|v| v.is_finite()) else {
                continue;
            };
            let line = by_name
                .entry(&metric.name)
                .or_default()
                .entry(index)
                .or_default();
            // A metric logged without a step is plotted in the order it was recorded.
            let step = metric.step.map_or(line.len() as f64, |s| s as f64);
            line.push((step, value));
        }
    }
    by_name
        .into_iter()
        .map(|(name, lines)| {
            let mut lines: Vec<(usize, Line)> = lines.into_iter().collect();
            for (_, line) in &mut lines {
                line.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
            let points = lines
                .iter()
                .flat_map(|(index, line)| {
                    line.iter().map(|(step, value)| Point {
                        run: runs[*index].0.clone(),
                        step: step.to_string(),
                        value: value.to_string(),
                    })
                })
                .collect();
            Chart {
                name: name.to_string(),
                svg: draw(&lines),
                points,
            }
        })
        .collect()
}

/// A range that is never empty, with a little room around the data.
fn padded(low: f64, high: f64) -> std::ops::Range<f64> {
    if low == high {
        let room = if low == 0.0 { 1.0 } else { low.abs() * 0.1 };
        return (low - room)..(high + room);
    }
    let room = (high - low) * 0.05;
    (low - room)..(high + room)
}

fn draw(lines: &[(usize, Line)]) -> String {
    let all = lines.iter().flat_map(|(_, line)| line.iter());
    let (mut x_low, mut x_high, mut y_low, mut y_high) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in all {
        x_low = x_low.min(*x);
        x_high = x_high.max(*x);
        y_low = y_low.min(*y);
        y_high = y_high.max(*y);
    }
    let mut svg = String::new();
    let drawn = (|| -> Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::with_string(&mut svg, (640, 300)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(padded(x_low, x_high), padded(y_low, y_high))?;
        // As many step labels as there are steps (up to 10), so whole steps get whole labels.
        let steps = lines
            .iter()
            .flat_map(|(_, line)| line.iter().map(|(x, _)| x.to_bits()))
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        let whole_steps = lines
            .iter()
            .all(|(_, line)| line.iter().all(|(x, _)| x.fract() == 0.0));
        let step_label = |x: &f64| {
            if whole_steps {
                format!("{x:.0}")
            } else {
                format!("{x}")
            }
        };
        chart
            .configure_mesh()
            .x_labels(steps.clamp(2, 10))
            .x_label_formatter(&step_label)
            .x_desc("step")
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 14))
            .light_line_style(RGBColor(238, 238, 238))
            .draw()?;
        for (index, line) in lines {
            let colour = rgb(*index);
            chart.draw_series(LineSeries::new(
                line.iter().copied(),
                colour.stroke_width(2),
            ))?;
            chart.draw_series(
                line.iter()
                    .map(|point| Circle::new(*point, 3, colour.filled())),
            )?;
        }
        root.present()?;
        Ok(())
    })();
    match drawn {
        Ok(()) => svg,
        Err(e) => format!("<p>The chart could not be drawn: {e}</p>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(name: &str, value: f64, step: Option<i64>) -> Metric {
        Metric {
            run_uid: "r".into(),
            name: name.into(),
            value: Some(value),
            step,
            timestamp: None,
        }
    }

    #[test]
    fn one_chart_per_metric_with_every_point_of_every_run() {
        let runs = vec![
            (
                "run-a 1.0.0".to_string(),
                vec![
                    metric("loss", 0.5, Some(2)),
                    metric("loss", 0.9, Some(1)),
                    metric("accuracy", 0.7, None),
                ],
            ),
            (
                "run-b 1.1.0".to_string(),
                vec![metric("loss", 0.8, Some(1)), metric("loss", 0.4, Some(2))],
            ),
        ];
        let charts = charts(&runs);
        assert_eq!(
            charts.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["accuracy", "loss"]
        );
        let loss = &charts[1];
        let table: Vec<(&str, &str, &str)> = loss
            .points
            .iter()
            .map(|p| (p.run.as_str(), p.step.as_str(), p.value.as_str()))
            .collect();
        assert_eq!(
            table,
            [
                ("run-a 1.0.0", "1", "0.9"),
                ("run-a 1.0.0", "2", "0.5"),
                ("run-b 1.1.0", "1", "0.8"),
                ("run-b 1.1.0", "2", "0.4")
            ]
        );
        assert!(loss.svg.starts_with("<svg"), "{}", &loss.svg[..80]);
        // A marker per point, in each run's colour; one line per run.
        assert_eq!(loss.svg.matches("<circle").count(), 4);
        let line = |index: usize| {
            format!(
                "stroke=\"{}\" stroke-width=\"2\"",
                colour(index).to_uppercase()
            )
        };
        assert_eq!(loss.svg.matches(&line(0)).count(), 1);
        assert_eq!(loss.svg.matches(&line(1)).count(), 1);
        // A single point still gets a chart.
        assert_eq!(charts[0].svg.matches("<circle").count(), 1);
    }
}
