//! The timeline as inline SVG: no script, no external reference, allowed
//! by the page's CSP. Horizontal positions are percentages of the SVG's
//! width (100% of the page), so it fits a phone and a desktop alike while
//! text and markers keep their size; each marker is a nested `<svg>` at a
//! percentage, drawn around its own origin in pixels. Every text (versions,
//! artifacts, reasons, who) goes through [`super::escape::html`].

use std::fmt::Write;

use chrono::{DateTime, Duration, Timelike, Utc};
use deploy_root::time::human;

use super::escape::html as esc;
use super::timeline::{EventKind, Lane, Timeline};

/// The axis band at the top.
const AXIS_H: i64 = 20;
/// A lane: its name, then its bar.
const LABEL_H: i64 = 16;
const BAR_H: i64 = 22;
const LANE_GAP: i64 = 12;
const LANE_H: i64 = LABEL_H + BAR_H + LANE_GAP;
/// Where the time axis starts and how wide it is, in percent.
const LEFT: f64 = 1.0;
const WIDTH: f64 = 97.5;

/// The SVG, or an empty string when there is nothing to draw.
pub fn render(t: &Timeline) -> String {
    let (Some(from), Some(to)) = (t.from, t.to) else {
        return String::new();
    };
    if t.lanes.is_empty() || to <= from {
        return String::new();
    }
    let span = (to - from).num_seconds().max(1) as f64;
    // From LEFT to LEFT + WIDTH percent: room at both ends for the
    // markers drawn around their time.
    let x = |at: DateTime<Utc>| -> f64 {
        let p = (at - from).num_seconds() as f64 / span;
        LEFT + p.clamp(0.0, 1.0) * WIDTH
    };
    let pct = |v: f64| format!("{v:.3}%");
    let height = AXIS_H + LANE_H * t.lanes.len() as i64;
    let mut s = String::with_capacity(8 * 1024);
    let _ = write!(
        s,
        "<svg class=\"tl\" id=\"timeline-svg\" xmlns=\"http://www.w3.org/2000/svg\" width=\"100%\" height=\"{height}\" role=\"img\" aria-labelledby=\"tl-title\">\
         <title id=\"tl-title\">What ran when, {} to {}</title>\
         <defs><pattern id=\"tl-hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\">\
         <rect width=\"6\" height=\"6\" class=\"tl-hatch-bg\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" class=\"tl-hatch-line\"/></pattern></defs>",
        human(from),
        human(to)
    );

    // The axis: a tick per hour, per 6 hours or per day, by the span.
    let step = tick_step(to - from);
    let mut tick = first_tick(from, step);
    s.push_str("<g class=\"tl-axis\">");
    while tick <= to {
        let px = x(tick);
        let midnight = tick.hour() == 0 && tick.minute() == 0;
        let label = if step >= Duration::days(1) || midnight {
            tick.format("%a %d").to_string()
        } else {
            tick.format("%H:%M").to_string()
        };
        let _ = write!(
            s,
            "<line class=\"tl-grid\" x1=\"{p}\" x2=\"{p}\" y1=\"{AXIS_H}\" y2=\"{height}\"/>\
             <text class=\"tl-tick\" x=\"{p}\" y=\"13\" dx=\"3\">{label}</text>",
            p = pct(px),
        );
        tick += step;
    }
    s.push_str("</g>");

    for (i, (name, lane)) in t.lanes.iter().enumerate() {
        let y0 = AXIS_H + LANE_H * i as i64;
        draw_lane(&mut s, i, name, lane, y0, &x, &pct);
    }
    s.push_str("</svg>");
    s
}

fn draw_lane(
    s: &mut String,
    index: usize,
    name: &str,
    lane: &Lane,
    y0: i64,
    x: &dyn Fn(DateTime<Utc>) -> f64,
    pct: &dyn Fn(f64) -> String,
) {
    let bar = y0 + LABEL_H;
    let _ = write!(
        s,
        "<g class=\"tl-lane\" data-component=\"{n}\">\
         <text class=\"tl-name\" x=\"0\" y=\"{ty}\">{n}</text>\
         <rect class=\"tl-track\" x=\"{LEFT}%\" y=\"{bar}\" width=\"{WIDTH}%\" height=\"{BAR_H}\"/>",
        n = esc(name),
        ty = y0 + 12,
    );
    for (j, r) in lane.runs.iter().enumerate() {
        let (a, b) = (x(r.from), x(r.to));
        let version = r.version.as_deref().unwrap_or(&r.artifact);
        let clip = format!("tl-c{index}-{j}");
        let _ = write!(
            s,
            "<g class=\"tl-run tl-run{k}\"><title>{v}: {art}, from {f} to {t}</title>\
             <clipPath id=\"{clip}\"><rect x=\"{x}\" y=\"{bar}\" width=\"{w}\" height=\"{BAR_H}\"/></clipPath>\
             <rect class=\"tl-seg\" x=\"{x}\" y=\"{bar}\" width=\"{w}\" height=\"{BAR_H}\"/>\
             <text class=\"tl-ver\" x=\"{x}\" y=\"{ty}\" dx=\"4\" clip-path=\"url(#{clip})\">{v}</text></g>",
            k = j % 2,
            v = esc(version),
            art = esc(&r.artifact),
            f = human(r.from),
            t = human(r.to),
            x = pct(a),
            w = pct((b - a).max(0.0)),
            ty = bar + 15,
        );
    }
    for d in &lane.down {
        let (a, b) = (x(d.from), x(d.to));
        let a = a.min(LEFT + WIDTH - 0.8);
        let _ = write!(
            s,
            "<rect class=\"tl-down{seen}\" x=\"{x}\" y=\"{bar}\" width=\"{w}\" height=\"{BAR_H}\" fill=\"url(#tl-hatch)\"><title>{why}: {f} to {t}</title></rect>",
            seen = if d.seen { "" } else { " tl-maybe" },
            x = pct(a),
            // At least a sliver, so that a DOWN found at the last check shows.
            w = pct((b - a).max(0.8)),
            why = esc(&d.why),
            f = human(d.from),
            t = human(d.to),
        );
    }
    let cy = bar + BAR_H / 2;
    for e in &lane.events {
        let (class, shape) = match e.kind {
            EventKind::Deploy => ("tl-deploy", "<path d=\"M0,-7 L0,7\"/><circle r=\"4.5\"/>"),
            EventKind::Failed => ("tl-failed", "<path d=\"M-6,-6 L6,6 M-6,6 L6,-6\"/>"),
            EventKind::WentBack => ("tl-wentback", "<path d=\"M-4,-4 L4,4 M-4,4 L4,-4\"/>"),
            EventKind::Rollback => ("tl-rollback", "<path d=\"M0,-7 L7,0 L0,7 L-7,0 Z\"/>"),
            EventKind::Recover => (
                "tl-recover",
                "<rect x=\"-4\" y=\"-4\" width=\"8\" height=\"8\"/>",
            ),
        };
        let what = match (&e.version, &e.artifact) {
            (Some(v), Some(a)) => format!("{v} ({a})"),
            (None, Some(a)) => a.clone(),
            _ => String::new(),
        };
        let _ = write!(
            s,
            "<svg class=\"tl-mark {class}\" x=\"{x}\" y=\"{cy}\" overflow=\"visible\"><g><title>{when}: {what}: {text}</title>{shape}</g></svg>",
            x = pct(x(e.at)),
            when = human(e.at),
            what = esc(&what),
            text = esc(&e.text),
        );
    }
    s.push_str("</g>");
}

/// The distance between ticks: about 4 to 12 over the span.
fn tick_step(span: Duration) -> Duration {
    [1, 2, 3, 6, 12, 24, 48]
        .iter()
        .map(|h| Duration::hours(*h))
        .find(|step| span / 8 <= *step)
        .unwrap_or(Duration::days(2))
}

/// The first multiple of `step` (from midnight UTC) after `from`.
fn first_tick(from: DateTime<Utc>, step: Duration) -> DateTime<Utc> {
    let midnight = from
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or(from);
    let mut t = midnight;
    while t <= from {
        t += step;
    }
    t
}
