//! Typed ids: an account's, a target's, an event's and a delivery's ids are different types, so
//! that arguments passed in the wrong order do not compile.
//!
//! Each is a `Uuid` underneath (v7, so ids sort by creation time), written and read as the same
//! text (`Display`, `FromStr`, serde transparent) and documented in OpenAPI as a uuid string:
//! nothing outside the process can tell them from a plain `Uuid`. Making one reads the clock
//! (`now_v7`), the one exception to this module's rule of no I/O.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new id, sorting after those made before it (UUIDv7).
            pub fn now_v7() -> Self {
                Self(Uuid::now_v7())
            }

            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::from_str(s).map(Self)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                uuid_schema()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

/// The schema utoipa gives a `Uuid`: a string in uuid format.
fn uuid_schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))).into()
}

typed_id!(
    /// An account (tenant).
    AccountId
);
typed_id!(
    /// A target of any kind: webhook endpoint, integration, mailer, destination.
    TargetId
);
typed_id!(
    /// An accepted event.
    EventId
);
typed_id!(
    /// One event's delivery to one target.
    DeliveryId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_and_write_as_their_uuid() {
        let uuid = Uuid::now_v7();
        let id = TargetId::from(uuid);
        assert_eq!(id.to_string(), uuid.to_string());
        assert_eq!(id.to_string().parse::<TargetId>().unwrap(), id);
        assert_eq!(serde_json::to_string(&id).unwrap(), serde_json::to_string(&uuid).unwrap());
        assert_eq!(serde_json::from_str::<TargetId>(&format!("\"{uuid}\"")).unwrap(), id);
        assert!("nope".parse::<AccountId>().is_err());
    }

    #[test]
    fn ids_are_documented_as_uuid_strings() {
        use utoipa::PartialSchema;
        let json = serde_json::to_value(EventId::schema()).unwrap();
        assert_eq!(json, serde_json::json!({"type": "string", "format": "uuid"}));
    }
}
