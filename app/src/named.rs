//! Closed sets of named states (a delivery's state, a meeting's status, …): one enum per
//! concept, stored in the database and sent over the API as its snake_case name, so the
//! names are spelled in one place and a typo is a compile error, not a row nobody finds.

/// Declares a named-state enum: serde and (with `ssr`) SeaORM's `DeriveActiveEnum` and
/// utoipa's `ToSchema` use the given names; `as_str` and `parse` convert by hand for
/// query strings and form values. The names are taken as `tt`, not `literal`: a
/// `literal` fragment reaches derive macros wrapped in an invisible group, which serde
/// unwraps but utoipa does not (the OpenAPI document then listed `DeadLetter` where the
/// API says `dead_letter`).
#[macro_export]
macro_rules! named_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:tt),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "ssr", derive(sea_orm::EnumIter, sea_orm::DeriveActiveEnum, utoipa::ToSchema))]
        #[cfg_attr(feature = "ssr", sea_orm(rs_type = "String", db_type = "String(sea_orm::sea_query::StringLen::None)"))]
        pub enum $name {
            $(
                $(#[$vmeta])*
                #[serde(rename = $text)]
                #[cfg_attr(feature = "ssr", sea_orm(string_value = $text))]
                $variant,
            )+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

#[cfg(test)]
mod tests {
    crate::named_enum! {
        /// A test set.
        pub enum Light { Red = "red", AmberFlashing = "amber_flashing" }
    }

    #[test]
    fn names_round_trip_through_text_and_json() {
        for light in Light::ALL {
            assert_eq!(Light::parse(light.as_str()), Some(*light));
            assert_eq!(serde_json::to_string(light).unwrap(), format!("\"{light}\""));
        }
        assert_eq!(Light::AmberFlashing.as_str(), "amber_flashing");
        assert_eq!(Light::parse("Red"), None, "names are exact");
    }
}
