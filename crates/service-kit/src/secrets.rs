//! Refusing to start with a demo or empty secret outside development mode.
//!
//! The compiled-in defaults carry demo keys so that `make run` and the tests work out of the
//! box; every one of them contains [`DEMO_MARKER`]. A deployment that forgot to replace one
//! would run with a key anyone can read in this repository, so `serve` refuses unless the
//! settings say `development = true` (`APP_DEVELOPMENT=true`).

use secrecy::{ExposeSecret, SecretString};

/// Every demo secret in the defaults contains this.
pub const DEMO_MARKER: &str = "change-me";

/// Collects what is wrong with a service's secrets, then refuses or (in development) warns.
#[must_use]
pub struct SecretCheck {
    development: bool,
    problems: Vec<String>,
}

impl SecretCheck {
    pub fn new(development: bool) -> Self {
        SecretCheck {
            development,
            problems: Vec::new(),
        }
    }

    /// `name` is the setting as an operator writes it (`introspection.key`).
    pub fn secret(mut self, name: &str, value: &SecretString) -> Self {
        let value = value.expose_secret();
        if value.trim().is_empty() {
            self.problems.push(format!("{name} is empty"));
        } else if value.contains(DEMO_MARKER) {
            self.problems
                .push(format!("{name} is the demo value from the defaults"));
        }
        self
    }

    /// A problem a caller found itself, such as a key digest that matches a demo key.
    pub fn refuse_if(mut self, found: bool, problem: &str) -> Self {
        if found {
            self.problems.push(problem.to_owned());
        }
        self
    }

    /// Fails with every problem named, unless in development mode, where they are logged.
    pub fn finish(self) -> anyhow::Result<()> {
        if self.problems.is_empty() {
            return Ok(());
        }
        let problems = self.problems.join("; ");
        if self.development {
            tracing::warn!(%problems, "development mode: running with demo or empty secrets");
            return Ok(());
        }
        anyhow::bail!(
            "refusing to start: {problems}. Set real secrets (e.g. APP_INTROSPECTION__KEY), or \
             APP_DEVELOPMENT=true on a development machine"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_and_empty_secrets_stop_a_production_start_and_not_a_development_one() {
        let check = |development| {
            SecretCheck::new(development)
                .secret("a.key", &SecretString::from("dev-a-key-change-me"))
                .secret("b.key", &SecretString::from(" "))
                .secret("c.key", &SecretString::from("0f3c9d2e7a"))
                .finish()
        };
        let refused = check(false)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(refused.contains("a.key is the demo value"), "{refused}");
        assert!(refused.contains("b.key is empty"), "{refused}");
        assert!(!refused.contains("c.key"), "{refused}");
        assert!(check(true).is_ok());
        assert!(
            SecretCheck::new(false)
                .secret("c.key", &SecretString::from("0f3c9d2e7a"))
                .finish()
                .is_ok()
        );
    }
}
