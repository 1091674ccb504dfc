//! Small files under `/sys/block/DEV/`: `dev` (`254:0`), `queue/scheduler`
//! (`none [mq-deadline] kyber bfq`), and single numbers (`queue/rotational`, `size`).

use super::{ParseError, num};

/// `MAJOR:MINOR`.
pub fn parse_dev(text: &str) -> Result<(u32, u32), ParseError> {
    let (a, b) = text
        .trim()
        .split_once(':')
        .ok_or_else(|| ParseError::new("dev", format!("{:?}", text.trim())))?;
    Ok((num(Some(a), "dev major")?, num(Some(b), "dev minor")?))
}

/// The active scheduler is the bracketed one; `none` alone on devices without a choice.
pub fn parse_scheduler(text: &str) -> Option<String> {
    let t = text.trim();
    if let (Some(a), Some(b)) = (t.find('['), t.find(']')) {
        if a < b {
            return Some(t[a + 1..b].to_string());
        }
    }
    (!t.is_empty() && !t.contains(' ')).then(|| t.to_string())
}

pub fn parse_u64(text: &str) -> Result<u64, ParseError> {
    num(Some(text.trim()), "number")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files() {
        assert_eq!(parse_dev("254:0\n").unwrap(), (254, 0));
        assert!(parse_dev("2540").is_err());
        assert_eq!(
            parse_scheduler("none [mq-deadline] kyber bfq \n").as_deref(),
            Some("mq-deadline")
        );
        assert_eq!(parse_scheduler("none\n").as_deref(), Some("none"));
        assert_eq!(parse_scheduler(""), None);
        assert_eq!(parse_u64("256\n").unwrap(), 256);
    }
}
