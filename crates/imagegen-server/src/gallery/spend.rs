//! `GET /spend`: what charged jobs cost per provider per UTC day, as an SVG bar chart
//! drawn here (no chart library); the totals per provider; and each gateway key's budget
//! for its current period as a bar. A key holder sees its own key and its own spend
//! only; this machine's callers without keys see the whole ledger and every key.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use imagegen::Credits;
use imagegen_ledger::{ApiKeyRecord, SpendGroup, SpendQuery, SpendRow};

use super::{Layout, error_page, render};
use crate::auth::Caller;
use crate::state::AppState;

/// The chart's geometry, in SVG user units.
const PLOT_HEIGHT: f64 = 200.0;
const LEFT: f64 = 64.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 56.0;
const BAR: f64 = 18.0;
const GAP: f64 = 14.0;

/// Bar colours, one per provider in turn (each at least 3:1 against white).
const COLOURS: [&str; 6] = [
    "#1f5fbf", "#b3461a", "#2e7d32", "#7b3fa0", "#8a6d00", "#00707a",
];

/// One bar.
#[derive(Debug, Clone)]
struct Bar {
    provider: String,
    day: String,
    credits: String,
    x: String,
    y: String,
    height: String,
    colour: &'static str,
}

/// A day's label under its bars.
#[derive(Debug, Clone)]
struct DayLabel {
    day: String,
    x: String,
}

/// A line of the y axis.
#[derive(Debug, Clone)]
struct Tick {
    label: String,
    y: String,
}

/// A provider in the legend and the totals.
#[derive(Debug, Clone)]
struct Total {
    provider: String,
    credits: String,
    usd: Option<String>,
    jobs: u64,
    colour: &'static str,
}

/// A key's budget.
#[derive(Debug, Clone)]
struct Budget {
    name: String,
    prefix: String,
    period: String,
    spent: String,
    reserved: String,
    limit: Option<String>,
    /// For the `meter`: used and its maximum.
    used: String,
    max: String,
    revoked: bool,
}

#[derive(Template)]
#[template(path = "gallery/spend.html")]
struct SpendPage {
    layout: Layout,
    scope: &'static str,
    bars: Vec<Bar>,
    days: Vec<DayLabel>,
    ticks: Vec<Tick>,
    width: String,
    height: String,
    axis_y: String,
    axis_right: String,
    totals: Vec<Total>,
    total: String,
    budgets: Vec<Budget>,
    show_budgets: bool,
}

/// `GET /spend`.
pub(crate) async fn page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let caller = match super::page_caller(&state, &headers, &uri).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let scoped = |group| match &caller {
        Caller::Key(record) => SpendQuery::by(group).paid_by(record.id),
        Caller::Local => SpendQuery::by(group),
    };
    let read = async {
        let days = state.ledger.spend(&scoped(SpendGroup::ProviderDay)).await?;
        let totals = state.ledger.spend(&scoped(SpendGroup::Provider)).await?;
        let keys = state.ledger.list_api_keys().await?;
        Ok::<_, imagegen_ledger::LedgerError>((days, totals, keys))
    };
    let (days, totals, keys) = match read.await {
        Ok(read) => read,
        Err(e) => {
            tracing::error!(error = %e, "the spend page could not read the ledger");
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The ledger could not be read.",
            );
        }
    };
    let keys: Vec<ApiKeyRecord> = match &caller {
        Caller::Key(record) => keys.into_iter().filter(|k| k.id == record.id).collect(),
        Caller::Local => keys,
    };
    let mut providers: Vec<String> = totals
        .iter()
        .filter_map(|r| r.provider.as_ref().map(ToString::to_string))
        .collect();
    for row in &days {
        if let Some(p) = &row.provider
            && !providers.iter().any(|known| known == p.as_str())
        {
            providers.push(p.to_string());
        }
    }
    let colour_of = |provider: &str| {
        let at = providers.iter().position(|p| p == provider).unwrap_or(0);
        COLOURS[at % COLOURS.len()]
    };
    let chart = chart(&days, &providers, &colour_of);
    let policy = state.client.policy();
    let total_rows: Vec<Total> = totals
        .iter()
        .filter_map(|row| {
            let provider = row.provider.as_ref()?;
            Some(Total {
                provider: provider.to_string(),
                credits: row.credits.to_string(),
                usd: policy
                    .worth_of(provider)
                    .and_then(|w| w.to_usd(row.credits))
                    .map(|usd| usd.to_string()),
                jobs: row.jobs,
                colour: colour_of(provider.as_str()),
            })
        })
        .collect();
    let total = Credits::checked_sum(totals.iter().map(|r| r.credits))
        .map_or_else(|| "too large to show".to_owned(), |c| c.to_string());
    let page = SpendPage {
        layout: Layout::new("Spend", "spend", &caller),
        scope: match caller {
            Caller::Key(_) => "what your key paid for",
            Caller::Local => "everything in the ledger",
        },
        bars: chart.bars,
        days: chart.days,
        ticks: chart.ticks,
        width: num(chart.width),
        height: num(chart.height),
        axis_y: num(TOP + PLOT_HEIGHT),
        axis_right: num(chart.width - 8.0),
        totals: total_rows,
        total,
        show_budgets: !keys.is_empty() || matches!(caller, Caller::Key(_)),
        budgets: keys.iter().map(budget).collect(),
    };
    render(StatusCode::OK, &page)
}

/// The chart's parts.
struct Chart {
    bars: Vec<Bar>,
    days: Vec<DayLabel>,
    ticks: Vec<Tick>,
    width: f64,
    height: f64,
}

/// Bars grouped by day (oldest first), one per provider that spent that day, scaled to
/// the dearest.
fn chart(
    rows: &[SpendRow],
    providers: &[String],
    colour_of: &dyn Fn(&str) -> &'static str,
) -> Chart {
    let mut by_day: BTreeMap<&str, Vec<&SpendRow>> = BTreeMap::new();
    for row in rows {
        if let (Some(day), Some(_)) = (row.day.as_deref(), &row.provider) {
            by_day.entry(day).or_default().push(row);
        }
    }
    let max = rows
        .iter()
        .map(|r| r.credits.to_f64())
        .fold(0.0_f64, f64::max);
    let scale = if max > 0.0 { PLOT_HEIGHT / max } else { 0.0 };
    let mut bars = Vec::new();
    let mut days = Vec::new();
    let mut x = LEFT + GAP;
    for (day, mut day_rows) in by_day {
        day_rows.sort_by_key(|r| {
            let name = r
                .provider
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            providers
                .iter()
                .position(|p| *p == name)
                .unwrap_or(usize::MAX)
        });
        let start = x;
        for row in day_rows {
            let provider = row
                .provider
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            let height = (row.credits.to_f64() * scale).max(1.0);
            bars.push(Bar {
                colour: colour_of(&provider),
                provider,
                day: day.to_owned(),
                credits: row.credits.to_string(),
                x: num(x),
                y: num(TOP + PLOT_HEIGHT - height),
                height: num(height),
            });
            x += BAR;
        }
        days.push(DayLabel {
            day: day.to_owned(),
            x: num((start + x) / 2.0),
        });
        x += GAP;
    }
    let ticks = (0..=4)
        .map(|i| {
            let value = max * f64::from(i) / 4.0;
            Tick {
                label: trim_number(value),
                y: num(TOP + PLOT_HEIGHT - value * scale),
            }
        })
        .collect();
    Chart {
        bars,
        days,
        ticks,
        width: (x + GAP).max(LEFT + 240.0),
        height: TOP + PLOT_HEIGHT + BOTTOM,
    }
}

/// A key's budget for its current period.
fn budget(record: &ApiKeyRecord) -> Budget {
    let used = record
        .spent
        .checked_add(record.reserved)
        .unwrap_or(record.spent);
    let max = record.limit.map_or_else(
        || used.to_f64().max(1.0),
        |limit| limit.to_f64().max(f64::MIN_POSITIVE),
    );
    Budget {
        name: record.name.clone(),
        prefix: record.prefix.clone(),
        period: record.period.as_str().to_owned(),
        spent: record.spent.to_string(),
        reserved: record.reserved.to_string(),
        limit: record.limit.map(|l| l.to_string()),
        used: num(used.to_f64().min(max)),
        max: num(max),
        revoked: !record.is_live(),
    }
}

/// A coordinate, to two decimals.
fn num(value: f64) -> String {
    format!("{value:.2}")
}

/// An axis label: as few decimals as it needs.
fn trim_number(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}
