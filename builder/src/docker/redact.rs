//! Keeps registry credentials out of everything the docker backend logs or
//! returns, on top of the [`BuildLog`]'s own redaction (which only knows
//! the secrets its creator gave it).

use crate::backend::BuildLog;
use crate::native::RegistrySettings;

/// Replaces the registry's username and password (or token) with `***`.
pub struct Redactor<'a> {
    secrets: Vec<String>,
    log: &'a BuildLog,
}

impl std::fmt::Debug for Redactor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

impl<'a> Redactor<'a> {
    pub fn new(settings: &RegistrySettings, log: &'a BuildLog) -> Self {
        let secrets = [&settings.password, &settings.username]
            .into_iter()
            .flatten()
            .map(|s| s.expose().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        Redactor { secrets, log }
    }

    /// `text` without any credential.
    pub fn clean(&self, text: &str) -> String {
        let mut out = self.log.redact(text);
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "***");
            }
        }
        out
    }

    /// Logs `text`, without any credential.
    pub fn line(&self, text: &str) {
        self.log.line(self.clean(text));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::Secret;

    #[test]
    fn credentials_never_reach_the_log() {
        let log = BuildLog::new(vec![]);
        let mut settings = RegistrySettings::new("r:5000");
        settings.username = Some(Secret::new("alice"));
        settings.password = Some(Secret::new("pa55word"));
        let r = Redactor::new(&settings, &log);
        r.line("login alice pa55word");
        assert_eq!(log.lines(), vec!["login *** ***"]);
        assert_eq!(r.clean("x pa55word"), "x ***");
        assert!(!format!("{r:?}").contains("pa55"));
    }
}
