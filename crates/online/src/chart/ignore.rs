//! `.helmignore` rules, matched exactly as helm's `pkg/ignore` matches them: one pattern a
//! line, `#` comments, Go `filepath.Match` globs (`*`, `?`, `[...]`, `\` escapes), a trailing
//! `/` for directories only, a pattern without `/` compared with the base name, one with `/`
//! (or a leading `/`) with the whole path from the chart root, and `!` negation with helm's
//! own meaning (a path that does not match a negated pattern is ignored). `**` is refused, as
//! helm refuses it. Hidden files under `templates/` are always ignored, as helm's defaults do.

use std::path::Path;

use super::error::ChartError;

/// One pattern.
#[derive(Debug, Clone)]
struct Rule {
    glob: String,
    negate: bool,
    dir_only: bool,
    whole_path: bool,
}

/// The rules of one chart.
#[derive(Debug, Clone)]
pub struct IgnoreRules {
    rules: Vec<Rule>,
}

impl IgnoreRules {
    /// Helm's defaults, then the rules of `text` (a `.helmignore` at `path`, named in errors).
    pub fn parse(text: &str, path: &Path) -> Result<IgnoreRules, ChartError> {
        let mut rules = IgnoreRules { rules: Vec::new() };
        rules
            .add("templates/.?*")
            .map_err(|message| ChartError::Helmignore {
                path: path.to_path_buf(),
                line: 0,
                message,
            })?;
        for (index, line) in text.lines().enumerate() {
            rules.add(line).map_err(|message| ChartError::Helmignore {
                path: path.to_path_buf(),
                line: index + 1,
                message,
            })?;
        }
        Ok(rules)
    }

    fn add(&mut self, line: &str) -> Result<(), String> {
        let mut rule = line.trim();
        if rule.is_empty() || rule.starts_with('#') {
            return Ok(());
        }
        if rule.contains("**") {
            return Err(format!(
                "pattern {rule:?}: double-star (**) syntax is not supported"
            ));
        }
        if glob_match(rule, "abc").is_none() {
            return Err(format!("pattern {rule:?} is not a valid glob"));
        }
        let negate = rule.starts_with('!');
        if negate {
            rule = &rule[1..];
        }
        let dir_only = rule.ends_with('/');
        if dir_only {
            rule = &rule[..rule.len() - 1];
        }
        let whole_path = rule.contains('/');
        self.rules.push(Rule {
            glob: rule.strip_prefix('/').unwrap_or(rule).to_string(),
            negate,
            dir_only,
            whole_path,
        });
        Ok(())
    }

    /// Whether `path` (relative to the chart root, `/`-separated) is left out of the package.
    pub fn ignores(&self, path: &str, is_dir: bool) -> bool {
        if path.is_empty() || path == "." {
            return false;
        }
        let base = path.rsplit('/').next().unwrap_or(path);
        for rule in &self.rules {
            let subject = if rule.whole_path { path } else { base };
            let matched = glob_match(&rule.glob, subject) == Some(true);
            if rule.negate {
                if (rule.dir_only && !is_dir) || !matched {
                    return true;
                }
                continue;
            }
            if rule.dir_only && !is_dir {
                continue;
            }
            if matched {
                return true;
            }
        }
        false
    }
}

/// Go's `filepath.Match` on `/`-separated paths: `None` for a malformed pattern.
fn glob_match(pattern: &str, name: &str) -> Option<bool> {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    match_from(&pattern, &name)
}

fn match_from(pattern: &[char], name: &[char]) -> Option<bool> {
    let Some((&first, rest)) = pattern.split_first() else {
        return Some(name.is_empty());
    };
    match first {
        '*' => {
            // Check the rest of the pattern is well formed even when nothing can match.
            let mut result = match_from(rest, name)?;
            for i in 0..name.len() {
                if result || name[i] == '/' {
                    break;
                }
                result = match_from(rest, &name[i + 1..])?;
            }
            Some(result)
        }
        '?' => match name.split_first() {
            Some((&c, tail)) if c != '/' => match_from(rest, tail),
            _ => validate(rest).map(|()| false),
        },
        '[' => {
            let (class_len, matches) = char_class(rest, name.first().copied())?;
            if matches && name.first().is_some_and(|&c| c != '/') {
                match_from(&rest[class_len..], &name[1..])
            } else {
                validate(&rest[class_len..]).map(|()| false)
            }
        }
        '\\' => {
            let (&literal, tail) = rest.split_first()?;
            match name.split_first() {
                Some((&c, name_tail)) if c == literal => match_from(tail, name_tail),
                _ => validate(tail).map(|()| false),
            }
        }
        literal => match name.split_first() {
            Some((&c, tail)) if c == literal => match_from(rest, tail),
            _ => validate(rest).map(|()| false),
        },
    }
}

/// Whether the rest of a pattern is well formed (Go reports a bad pattern even when an
/// earlier part already failed to match).
fn validate(pattern: &[char]) -> Option<()> {
    match_from(pattern, &[]).map(|_| ())
}

/// A `[...]` class after its `[`: the number of pattern characters it spans (with the `]`)
/// and whether `c` is in it.
fn char_class(pattern: &[char], c: Option<char>) -> Option<(usize, bool)> {
    let mut i = 0;
    let negated = pattern.first() == Some(&'^');
    if negated {
        i += 1;
    }
    let mut found = false;
    let mut first = true;
    loop {
        let &start = pattern.get(i)?;
        if start == ']' && !first {
            i += 1;
            break;
        }
        first = false;
        let (low, next) = class_char(pattern, i)?;
        i = next;
        let mut high = low;
        if pattern.get(i) == Some(&'-') {
            let (end, after) = class_char(pattern, i + 1)?;
            high = end;
            i = after;
        }
        if c.is_some_and(|c| low <= c && c <= high) {
            found = true;
        }
    }
    Some((i, found != negated))
}

fn class_char(pattern: &[char], i: usize) -> Option<(char, usize)> {
    match *pattern.get(i)? {
        '\\' => Some((*pattern.get(i + 1)?, i + 2)),
        '-' | ']' => None,
        c => Some((c, i + 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> IgnoreRules {
        IgnoreRules::parse(text, Path::new(".helmignore")).unwrap()
    }

    #[test]
    fn globs_match_as_go_filepath_match() {
        assert_eq!(glob_match("*.bak", "a.bak"), Some(true));
        assert_eq!(glob_match("*.bak", "dir/a.bak"), Some(false));
        assert_eq!(glob_match("a?c", "abc"), Some(true));
        assert_eq!(glob_match("[a-c]x", "bx"), Some(true));
        assert_eq!(glob_match("[^a-c]x", "bx"), Some(false));
        assert_eq!(glob_match("\\*", "*"), Some(true));
        assert_eq!(glob_match("docs/*", "docs/x.md"), Some(true));
        assert_eq!(glob_match("[", "a"), None);
        assert_eq!(glob_match("a[", "b"), None);
    }

    #[test]
    fn helmignore_rules_follow_helm() {
        let r = rules("# comment\n\n*.bak\nnotes/\n/secret.txt\nci/*.yaml\n");
        assert!(r.ignores("x.bak", false));
        assert!(r.ignores("templates/x.bak", false));
        assert!(r.ignores("notes", true));
        assert!(!r.ignores("notes", false));
        assert!(r.ignores("secret.txt", false));
        assert!(r.ignores("ci/test.yaml", false));
        assert!(!r.ignores("ci/sub/test.yaml", false));
        assert!(r.ignores("templates/.hidden", false));
        assert!(!r.ignores("templates/deployment.yaml", false));
        assert!(!r.ignores("values.yaml", false));
        // Helm's negation: a path that does not match a negated pattern is ignored.
        let negated = rules("!keep.txt\n");
        assert!(!negated.ignores("keep.txt", false));
        assert!(negated.ignores("other.txt", false));
    }

    #[test]
    fn double_star_and_bad_globs_are_refused_with_their_line() {
        let error = IgnoreRules::parse("ok\nfoo/**/bar\n", Path::new("c/.helmignore"));
        assert!(error
            .unwrap_err()
            .to_string()
            .starts_with("c/.helmignore:2: "));
        assert!(IgnoreRules::parse("[z-\n", Path::new(".helmignore")).is_err());
    }
}
