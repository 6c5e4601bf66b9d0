//! Server-rendered SVG charts for the performance page: geometry is computed here, the
//! template only draws it (and escapes every label).

/// One horizontal bar with its value written at its end.
#[derive(Debug, Clone)]
pub struct HBar {
    pub y: f64,
    pub width: f64,
    pub height: f64,
    /// `avg` or `p90`, also the CSS class; `late` is added when over target.
    pub class: String,
    pub value: String,
    pub text_x: f64,
    pub text_y: f64,
}

#[derive(Debug, Clone)]
pub struct HRow {
    pub label: String,
    pub label_y: f64,
    pub bars: Vec<HBar>,
    /// The target as a tick, when known.
    pub target_x: Option<f64>,
    pub target_y1: f64,
    pub target_y2: f64,
}

/// Per station: average and p90 stage time against the target.
#[derive(Debug, Clone)]
pub struct StationChart {
    pub width: f64,
    pub height: f64,
    pub plot_x: f64,
    pub rows: Vec<HRow>,
}

pub struct StationFigures<'a> {
    pub label: &'a str,
    pub average_seconds: f64,
    pub p90_seconds: f64,
    pub target_seconds: f64,
}

const ROW: f64 = 84.0;
const BAR: f64 = 30.0;

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

impl StationChart {
    pub fn new(stations: &[StationFigures<'_>]) -> Self {
        let (width, plot_x, value_room) = (960.0, 190.0, 110.0);
        let max = stations
            .iter()
            .flat_map(|s| [s.average_seconds, s.p90_seconds, s.target_seconds])
            .fold(1.0_f64, f64::max);
        let scale = (width - plot_x - value_room) / max;
        let rows = stations
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let top = 12.0 + i as f64 * ROW;
                let bar = |n: usize, seconds: f64, class: &str| {
                    let y = top + n as f64 * (BAR + 4.0);
                    let w = round((seconds * scale).max(2.0));
                    let late = s.target_seconds > 0.0 && seconds > s.target_seconds;
                    HBar {
                        y,
                        width: w,
                        height: BAR,
                        class: if late {
                            format!("{class} late")
                        } else {
                            class.to_owned()
                        },
                        value: format!(
                            "{} {}",
                            // The bar's name as the reader says it; the class stays the key.
                            if class == "avg" {
                                crate::i18n::text().chart_avg
                            } else {
                                class
                            },
                            crate::screens::duration(seconds.round() as i64)
                        ),
                        text_x: round(plot_x + w + 8.0),
                        text_y: y + BAR * 0.72,
                    }
                };
                HRow {
                    label: s.label.to_owned(),
                    label_y: top + BAR + 8.0,
                    bars: vec![
                        bar(0, s.average_seconds, "avg"),
                        bar(1, s.p90_seconds, "p90"),
                    ],
                    target_x: (s.target_seconds > 0.0)
                        .then(|| round(plot_x + s.target_seconds * scale)),
                    target_y1: top - 6.0,
                    target_y2: top + 2.0 * BAR + 10.0,
                }
            })
            .collect();
        StationChart {
            width,
            height: 24.0 + stations.len().max(1) as f64 * ROW,
            plot_x,
            rows,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Column {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    pub label: String,
    pub label_x: f64,
    pub value: u32,
    pub value_y: f64,
}

/// Orders per hour of the day.
#[derive(Debug, Clone)]
pub struct HourChart {
    pub width: f64,
    pub height: f64,
    pub baseline: f64,
    pub columns: Vec<Column>,
}

impl HourChart {
    /// `counts[h]` is the number of orders accepted in hour `h`; hours before the first and
    /// after the last order are left out (at least 8 hours are shown).
    pub fn new(counts: &[u32; 24]) -> Self {
        let first = counts.iter().position(|&c| c > 0).unwrap_or(10);
        let last = counts.iter().rposition(|&c| c > 0).unwrap_or(first);
        let last = last.max(first + 7).min(23);
        let first = first.min(last.saturating_sub(7));
        let (width, height, baseline) = (960.0, 300.0, 250.0);
        let hours = last - first + 1;
        let slot = width / hours as f64;
        let max = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
        let columns = (first..=last)
            .enumerate()
            .map(|(i, hour)| {
                let h = round(counts[hour] as f64 / max * (baseline - 40.0));
                let x = round(i as f64 * slot + slot * 0.15);
                Column {
                    x,
                    y: baseline - h,
                    width: round(slot * 0.7),
                    height: h,
                    label: format!("{hour:02}:00"),
                    label_x: round(x + slot * 0.35),
                    value: counts[hour],
                    value_y: baseline - h - 8.0,
                }
            })
            .collect();
        HourChart {
            width,
            height,
            baseline,
            columns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_value() {
        let chart = StationChart::new(&[
            StationFigures {
                label: "Dough",
                average_seconds: 60.0,
                p90_seconds: 120.0,
                target_seconds: 90.0,
            },
            StationFigures {
                label: "Oven",
                average_seconds: 240.0,
                p90_seconds: 300.0,
                target_seconds: 300.0,
            },
        ]);
        assert_eq!(chart.rows.len(), 2);
        let widest = chart.rows[1].bars[1].width;
        assert!(chart.rows[0].bars[0].width < widest);
        assert!(chart.rows[0].bars[1].class.contains("late"));
        assert!(!chart.rows[1].bars[1].class.contains("late"));
        assert!(chart.plot_x + widest <= chart.width);
    }

    #[test]
    fn hours_cover_the_day_s_orders() {
        let mut counts = [0; 24];
        counts[11] = 3;
        counts[13] = 6;
        let chart = HourChart::new(&counts);
        assert_eq!(chart.columns.len(), 8);
        assert!(
            chart
                .columns
                .iter()
                .any(|c| c.label == "13:00" && c.value == 6)
        );
    }
}
