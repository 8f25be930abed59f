//! The error for a name outside the contract: which field, what was expected,
//! and the input as it was given.

use std::fmt;

/// The part of an artifact name that a [`NameError`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// The name as a whole (length, encoding, missing separators).
    Name,
    /// `<kind>`.
    Kind,
    /// `<build time>`.
    BuildTime,
    /// `<version>`.
    Version,
    /// `<branch>`.
    Branch,
    /// `.<ext>`.
    Ext,
}

impl Field {
    /// The field as it is called in messages and in the README.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::Kind => "kind",
            Field::BuildTime => "build time",
            Field::Version => "version",
            Field::Branch => "branch",
            Field::Ext => "extension",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a valid artifact name.
///
/// The message names the field at fault, shows the offending part and the
/// whole input (escaped, so that control characters and newlines are
/// visible), and says what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameError {
    input: String,
    field: Field,
    part: String,
    expected: String,
}

impl NameError {
    pub(crate) fn new(
        input: &str,
        field: Field,
        part: &str,
        expected: impl Into<String>,
    ) -> NameError {
        NameError {
            input: input.to_string(),
            field,
            part: part.to_string(),
            expected: expected.into(),
        }
    }

    /// The field at fault.
    pub fn field(&self) -> Field {
        self.field
    }

    /// The whole input, as given (lossily decoded if it was not UTF-8).
    pub fn input(&self) -> &str {
        &self.input
    }

    /// What the field should have been.
    pub fn expected(&self) -> &str {
        &self.expected
    }
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field == Field::Name {
            write!(
                f,
                "invalid artifact name {:?}: expected {}",
                self.input, self.expected
            )
        } else {
            write!(
                f,
                "invalid artifact name {:?}: the {} {:?} is not valid: expected {}",
                self.input, self.field, self.part, self.expected
            )
        }
    }
}

impl std::error::Error for NameError {}
