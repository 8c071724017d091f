//! The freeze gate: no freeze window of the environment is active (weekly
//! windows in a named zone, date ranges; a window that cannot be read fails
//! closed).

use super::*;

/// If `now` falls in the window: when that occurrence ends.
pub(super) fn window_end(w: &FreezeWindow, now: Timestamp) -> Result<Option<Timestamp>, String> {
    let tz = TimeZone::get(&w.timezone).map_err(|_| {
        format!(
            "unknown time zone '{}' in freeze window '{}'",
            w.timezone,
            w.label()
        )
    })?;
    let local = now.to_zoned(tz.clone());
    let today = local.date();
    let at = |d: jiff::civil::Date, mins: u32| -> Option<Timestamp> {
        let day = if mins >= 24 * 60 {
            d.checked_add(1.day()).ok()?
        } else {
            d
        };
        let m = mins % (24 * 60);
        day.at((m / 60) as i8, (m % 60) as i8, 0, 0)
            .to_zoned(tz.clone())
            .ok()
            .map(|z| z.timestamp())
    };
    for (a, b) in &w.dates {
        if today >= *a && today <= *b {
            return Ok(b.checked_add(1.day()).ok().and_then(|next| at(next, 0)));
        }
    }
    if !w.days.is_empty() {
        let (s, e) = match (w.start, w.end) {
            (Some(s), Some(e)) => (s.minutes(), e.minutes()),
            _ => (0, 24 * 60),
        };
        for back in [0i64, 1] {
            let Ok(d) = today.checked_sub(back.days()) else {
                continue;
            };
            let wd = d.weekday().to_monday_zero_offset() as u8;
            if !w.days.contains(&wd) {
                continue;
            }
            let start = at(d, s);
            let end = if e > s {
                at(d, e)
            } else {
                d.checked_add(1.day()).ok().and_then(|n| at(n, e))
            };
            if let (Some(start), Some(end)) = (start, end)
                && start <= now
                && now < end
            {
                return Ok(Some(end));
            }
        }
    }
    Ok(None)
}
pub(super) fn describe(w: &FreezeWindow) -> String {
    let mut parts = Vec::new();
    if !w.days.is_empty() {
        let days: Vec<&str> = w
            .days
            .iter()
            .map(|d| WEEKDAYS[usize::from(*d) % 7])
            .collect();
        match (w.start, w.end) {
            (Some(s), Some(e)) => parts.push(format!("{} {s}-{e}", days.join(","))),
            _ => parts.push(days.join(",")),
        }
    }
    if !w.raw_dates.is_empty() {
        parts.push(w.raw_dates.join(", "));
    }
    format!("{} ({} {})", w.label(), parts.join("; "), w.timezone)
}
pub fn freeze(f: &Facts<'_>, p: &PromotionPolicy) -> GateResult {
    let mut t = f.now;
    let mut hit: Vec<String> = Vec::new();
    // Windows can chain (a holiday right after a weekend); follow them.
    for _ in 0..32 {
        let mut next = None;
        for w in &p.freeze_windows {
            match window_end(w, t) {
                Err(e) => return gate(Gate::Freeze, GateStatus::Failed, e),
                Ok(Some(end)) => {
                    let d = describe(w);
                    if !hit.contains(&d) {
                        hit.push(d);
                    }
                    next = Some(next.map_or(end, |n: Timestamp| n.max(end)));
                }
                Ok(None) => {}
            }
        }
        match next {
            Some(end) if end > t => t = end,
            _ => break,
        }
    }
    if hit.is_empty() {
        return gate(
            Gate::Freeze,
            GateStatus::Passed,
            "no freeze window is active",
        );
    }
    let reason = p
        .freeze_windows
        .iter()
        .find_map(|w| w.reason.clone())
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    GateResult {
        gate: Gate::Freeze,
        status: GateStatus::Pending,
        reason: format!(
            "'{}' is frozen by {}{reason}; passes at {}",
            f.env,
            hit.join(" then "),
            time::format(t)
        ),
        passes_at: Some(time::format(t)),
    }
}
