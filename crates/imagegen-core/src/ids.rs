//! Names of providers, models and plans.

use std::borrow::Borrow;
use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self::new(s)
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self::new(s)
            }
        }

        impl std::str::FromStr for $name {
            type Err = crate::error::InvalidInput;

            /// Reads a name typed by a person: trimmed, and never empty.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let text = s.trim();
                if text.is_empty() {
                    return Err(crate::error::InvalidInput::new(
                        stringify!($name),
                        "the name is empty",
                    ));
                }
                Ok(Self::new(text))
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

name_type! {
    /// A provider's short name, such as `kolbo` or `koala`: lower case, as on the command line.
    ///
    /// ```
    /// use imagegen_core::ProviderId;
    /// assert_eq!(ProviderId::new("Kolbo"), "kolbo");
    /// ```
    ProviderId
}

name_type! {
    /// A model identifier exactly as its provider spells it (`nano-banana-2`, `gpt-image-2`).
    ModelId
}

name_type! {
    /// A provider's subscription plan, lower case (`basic`, `professional`).
    PlanName
}

impl ProviderId {
    /// A provider name; surrounding spaces are dropped and letters lower-cased.
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into().trim().to_ascii_lowercase())
    }
}

impl ModelId {
    /// A model identifier, kept exactly as given but for surrounding spaces.
    pub fn new(id: impl Into<String>) -> Self {
        let id = id.into();
        let trimmed = id.trim();
        if trimmed.len() == id.len() {
            Self(id)
        } else {
            Self(trimmed.to_owned())
        }
    }
}

impl PlanName {
    /// A plan name; surrounding spaces are dropped and letters lower-cased.
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into().trim().to_ascii_lowercase())
    }
}
