//! An error with its causes on one line, for messages that keep an error as text (a retry's
//! last failure, a failed image in a load summary) and for the binaries' error output.

/// `error` and all its sources on one line, `outer: inner: innermost`, skipping a source whose
/// text is already part of what came before (as reqwest's and hyper's errors repeat theirs).
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("reading index.json")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn causes_follow_on_one_line() {
        let error = Outer(std::io::Error::other("disk on fire"));
        assert_eq!(error_chain(&error), "reading index.json: disk on fire");
        let repeated = Outer(std::io::Error::other("reading index.json"));
        assert_eq!(error_chain(&repeated), "reading index.json");
    }
}
