//! The outcome: every line of arithmetic, per check and per profile.

use super::quantity::{format_cpu, format_memory};
use serde::Serialize;
use std::fmt;

/// What a check counts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Unit {
    Connections,
    Cpu,
    Memory,
}

impl Unit {
    pub(crate) fn format(self, amount: u64) -> String {
        match self {
            Unit::Connections => amount.to_string(),
            Unit::Cpu => format_cpu(amount),
            Unit::Memory => format_memory(amount),
        }
    }
}

/// One line of arithmetic: `label: count × what each = count·each`.
pub(crate) struct Term {
    pub label: String,
    pub count: u64,
    /// Names `each` in the line (`cp_max`), or empty.
    pub what: &'static str,
    pub each: u64,
}

impl Term {
    pub(crate) fn product(&self) -> u64 {
        self.count.saturating_mul(self.each)
    }
}

/// How many of the largest terms a failing check names.
const NAMED_ON_FAILURE: usize = 3;

/// One check: terms summed to a total, held to a limit.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// `connections`, `cpu`, `memory`, `pod cpu`, `pod memory`, `haproxy memory`, `valkey memory`
    /// or `postgres work_mem`.
    pub name: &'static str,
    /// Whether `total ≤ limit`.
    pub ok: bool,
    /// The sum held to the limit: connections, millicores or bytes.
    pub total: u64,
    /// The most the total may be, in the same unit.
    pub limit: u64,
    /// Every line of arithmetic; the last one compares total and limit.
    pub lines: Vec<String>,
}

impl Check {
    /// Sums `terms` and compares the total with `limit`, whose derivation is `limit_arithmetic`.
    pub(crate) fn new(
        name: &'static str,
        unit: Unit,
        mut terms: Vec<Term>,
        notes: Vec<String>,
        limit_arithmetic: String,
        limit: u64,
    ) -> Check {
        let total = terms.iter().map(Term::product).fold(0, u64::saturating_add);
        let ok = total <= limit;
        let mut lines: Vec<String> = terms
            .iter()
            .map(|t| {
                let what = if t.what.is_empty() {
                    String::new()
                } else {
                    format!("{} ", t.what)
                };
                format!(
                    "{}: {} × {what}{} = {}",
                    t.label,
                    t.count,
                    unit.format(t.each),
                    unit.format(t.product())
                )
            })
            .collect();
        lines.push(format!("total: {}", unit.format(total)));
        lines.extend(notes.into_iter().map(|note| format!("note: {note}")));
        let (sign, verdict) = if ok { ("≥", "ok") } else { ("<", "FAIL") };
        let mut last = format!(
            "{limit_arithmetic} = {} {sign} {} total: {verdict}",
            unit.format(limit),
            unit.format(total)
        );
        if !ok && terms.len() > 1 {
            terms.sort_by_key(|t| std::cmp::Reverse(t.product()));
            let largest: Vec<String> = terms
                .iter()
                .take(NAMED_ON_FAILURE)
                .map(|t| format!("{} {}", t.label, unit.format(t.product())))
                .collect();
            last.push_str(&format!(" (largest: {})", largest.join(", ")));
        }
        lines.push(last);
        Check {
            name,
            ok,
            total,
            limit,
            lines,
        }
    }

    /// The line comparing total and limit.
    pub fn verdict(&self) -> &str {
        self.lines.last().map_or("", String::as_str)
    }
}

/// Every check of one profile on one site; serialises as `{"profile", "ok", "checks"}`.
#[derive(Debug, Clone)]
pub struct Report {
    /// The profile checked.
    pub profile: String,
    /// The checks, in a fixed order.
    pub checks: Vec<Check>,
}

impl Serialize for Report {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut report = serializer.serialize_struct("Report", 3)?;
        report.serialize_field("profile", &self.profile)?;
        report.serialize_field("ok", &self.ok())?;
        report.serialize_field("checks", &self.checks)?;
        report.end()
    }
}

impl Report {
    pub(crate) fn new(profile: String, checks: Vec<Check>) -> Report {
        Report { profile, checks }
    }

    /// Whether every check passes.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|check| check.ok)
    }

    /// The checks that fail.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|check| !check.ok)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = |ok| if ok { "ok" } else { "FAIL" };
        writeln!(f, "profile {}: {}", self.profile, verdict(self.ok()))?;
        for check in &self.checks {
            writeln!(f, "  {}: {}", check.name, verdict(check.ok))?;
            for line in &check.lines {
                writeln!(f, "    {line}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(label: &str, count: u64, each: u64) -> Term {
        Term {
            label: label.into(),
            count,
            what: "cp_max",
            each,
        }
    }

    #[test]
    fn a_passing_check_shows_each_product_and_the_total() {
        let terms = vec![term("a", 2, 10), term("b", 1, 5)];
        let check = Check::new(
            "connections",
            Unit::Connections,
            terms,
            vec![],
            "30".into(),
            30,
        );
        assert!(check.ok);
        assert_eq!(check.total, 25);
        assert_eq!(
            check.lines,
            [
                "a: 2 × cp_max 10 = 20",
                "b: 1 × cp_max 5 = 5",
                "total: 25",
                "30 = 30 ≥ 25 total: ok"
            ]
        );
    }

    #[test]
    fn a_failing_check_names_its_largest_terms() {
        let terms = vec![term("small", 1, 1), term("big", 4, 10), term("mid", 1, 8)];
        let check = Check::new(
            "connections",
            Unit::Connections,
            terms,
            vec![],
            "x".into(),
            40,
        );
        assert!(!check.ok);
        assert_eq!(
            check.verdict(),
            "x = 40 < 49 total: FAIL (largest: big 40, mid 8, small 1)"
        );
        let report = Report::new("p".into(), vec![check]);
        assert!(!report.ok());
        assert_eq!(report.failures().count(), 1);
    }
}
