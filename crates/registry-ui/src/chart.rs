//! Metric charts: one per metric name, value by step, every run overlaid in its own colour,
//! laid out by plotters (scales, ticks, grid, series) and written as inline SVG (no script, no
//! font files). Only numbers are drawn inside the SVG; names stay in the escaped HTML around it.
//!
//! plotters' own SVG backend also writes files, which links `std::fs` into the component and so
//! an import of `wasi:filesystem` that its world refuses; [`SvgString`] writes the same SVG
//! elements into a `String` and nothing else.

use plotters::prelude::*;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
};
use registry_store::metrics::Metric;
use std::collections::BTreeMap;
use std::fmt::Write;

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

/// A plotters drawing backend that appends SVG elements to a string.
struct SvgString<'a> {
    size: (u32, u32),
    svg: &'a mut String,
}

type Drawn = Result<(), DrawingErrorKind<std::fmt::Error>>;

fn css(colour: BackendColor) -> String {
    let (r, g, b) = colour.rgb;
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// The `opacity` attribute, only when not opaque.
fn opacity(colour: BackendColor) -> String {
    if colour.alpha >= 1.0 {
        String::new()
    } else {
        format!(" opacity=\"{:.3}\"", colour.alpha)
    }
}

/// A shape's colour: filled with it, or outlined in it.
fn paint(colour: BackendColor, fill: bool) -> String {
    if fill {
        format!("fill=\"{}\"", css(colour))
    } else {
        format!("fill=\"none\" stroke=\"{}\"", css(colour))
    }
}

fn points(path: impl IntoIterator<Item = BackendCoord>) -> String {
    path.into_iter()
        .map(|(x, y)| format!("{x},{y}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl<'a> SvgString<'a> {
    /// Opens the `<svg>` element in `svg`; the caller closes it once plotters is done.
    fn new(size: (u32, u32), svg: &'a mut String) -> Self {
        svg.push_str(&format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">",
            w = size.0,
            h = size.1
        ));
        Self { size, svg }
    }

    fn element(&mut self, element: std::fmt::Arguments) -> Drawn {
        self.svg
            .write_fmt(element)
            .map_err(DrawingErrorKind::DrawingError)
    }
}

impl DrawingBackend for SvgString<'_> {
    type ErrorType = std::fmt::Error;

    fn get_size(&self) -> (u32, u32) {
        self.size
    }

    fn ensure_prepared(&mut self) -> Drawn {
        Ok(())
    }

    fn present(&mut self) -> Drawn {
        Ok(())
    }

    fn draw_pixel(&mut self, (x, y): BackendCoord, colour: BackendColor) -> Drawn {
        let (fill, alpha) = (css(colour), opacity(colour));
        self.element(format_args!(
            "<rect x=\"{x}\" y=\"{y}\" width=\"1\" height=\"1\" fill=\"{fill}\"{alpha}/>"
        ))
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Drawn {
        let (stroke, alpha, width) = (
            css(style.color()),
            opacity(style.color()),
            style.stroke_width(),
        );
        self.element(format_args!(
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{stroke}\" stroke-width=\"{width}\"{alpha}/>",
            from.0, from.1, to.0, to.1
        ))
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        (x0, y0): BackendCoord,
        (x1, y1): BackendCoord,
        style: &S,
        fill: bool,
    ) -> Drawn {
        let (paint, alpha) = (paint(style.color(), fill), opacity(style.color()));
        self.element(format_args!(
            "<rect x=\"{x0}\" y=\"{y0}\" width=\"{}\" height=\"{}\" {paint}{alpha}/>",
            x1 - x0,
            y1 - y0
        ))
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Drawn {
        let (stroke, alpha, width) = (
            css(style.color()),
            opacity(style.color()),
            style.stroke_width(),
        );
        let points = points(path);
        self.element(format_args!(
            "<polyline fill=\"none\" stroke=\"{stroke}\" stroke-width=\"{width}\"{alpha} points=\"{points}\"/>"
        ))
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        (x, y): BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Drawn {
        let (paint, alpha) = (paint(style.color(), fill), opacity(style.color()));
        self.element(format_args!(
            "<circle cx=\"{x}\" cy=\"{y}\" r=\"{radius}\" {paint}{alpha}/>"
        ))
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Drawn {
        let (fill, alpha) = (css(style.color()), opacity(style.color()));
        let points = points(vert);
        self.element(format_args!(
            "<polygon points=\"{points}\" fill=\"{fill}\"{alpha}/>"
        ))
    }

    fn draw_text<T: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &T,
        (x, y): BackendCoord,
    ) -> Drawn {
        let anchor = match style.anchor().h_pos {
            HPos::Left => "start",
            HPos::Center => "middle",
            HPos::Right => "end",
        };
        // plotters anchors text by its box; SVG by its baseline.
        let baseline = match style.anchor().v_pos {
            VPos::Top => "hanging",
            VPos::Center => "middle",
            VPos::Bottom => "auto",
        };
        let (fill, size, text) = (css(style.color()), style.size(), escape(text));
        self.element(format_args!(
            "<text x=\"{x}\" y=\"{y}\" font-family=\"sans-serif\" font-size=\"{size}\" fill=\"{fill}\" text-anchor=\"{anchor}\" dominant-baseline=\"{baseline}\">{text}</text>"
        ))
    }
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
        let root = SvgString::new((640, 300), &mut svg).into_drawing_area();
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
                Color::stroke_width(&colour, 2),
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
        Ok(()) => svg + "</svg>",
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
        let line = |index: usize| format!("stroke=\"{}\" stroke-width=\"2\"", colour(index));
        assert_eq!(loss.svg.matches(&line(0)).count(), 1);
        assert_eq!(loss.svg.matches(&line(1)).count(), 1);
        // A single point still gets a chart.
        assert_eq!(charts[0].svg.matches("<circle").count(), 1);
    }
}
