//! Small input checks shared by handlers; each returns field errors.

use crate::error::FieldError;

/// A pragmatic address check: one `@`, a non-empty local part, a dotted
/// domain, no spaces, within RFC 5321's length. Delivery proves the rest.
pub fn email(field: &str, value: &str, errors: &mut Vec<FieldError>) {
    let ok = value.len() <= 254
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        && match value.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && local.len() <= 64
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains("..")
            }
            None => false,
        };
    if !ok {
        errors.push(FieldError::new(field, "is not a valid email address"));
    }
}

pub fn length(field: &str, value: &str, min: usize, max: usize, errors: &mut Vec<FieldError>) {
    let n = value.trim().chars().count();
    if n < min || n > max {
        errors.push(FieldError::new(
            field,
            format!("must be {min} to {max} characters"),
        ));
    }
}

/// An absolute `http(s)` URL of reasonable length.
pub fn http_url(field: &str, value: &str, errors: &mut Vec<FieldError>) {
    let ok = value.len() <= 2048
        && url::Url::parse(value)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
    if !ok {
        errors.push(FieldError::new(field, "must be an http(s) URL"));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn emails() {
        for good in ["a@b.co", "first.last+tag@sub.example.org"] {
            let mut e = vec![];
            super::email("email", good, &mut e);
            assert!(e.is_empty(), "{good}");
        }
        for bad in [
            "", "a", "a@b", "@b.co", "a@.co", "a b@c.co", "a@b..co", "a@b@c.co",
        ] {
            let mut e = vec![];
            super::email("email", bad, &mut e);
            assert_eq!(e.len(), 1, "{bad}");
        }
    }
}
