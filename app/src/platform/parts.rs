//! Each capability's own state and settings, kept by type. Platform composes them into
//! `Settings` and `AppState` without knowing them: the capability defines the type
//! (`BrokerSettings`, `ChatParts`, …), start-up puts one value of it in, and the
//! capability reads it back with `part::<T>()`. So dependencies run one way: platform
//! knows no capability, and a capability's settings live next to the code that reads
//! them.

use std::any::{Any, TypeId};
use std::collections::HashMap;

/// A value of any cloneable type, kept by its type.
trait Part: Any + Send + Sync {
    fn clone_part(&self) -> Box<dyn Part>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn type_name(&self) -> &'static str;
}

impl<T: Any + Send + Sync + Clone> Part for T {
    fn clone_part(&self) -> Box<dyn Part> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }
}

#[derive(Default)]
pub struct Parts(HashMap<TypeId, Box<dyn Part>>);

impl Parts {
    /// Puts `part` in (replacing an earlier value of its type).
    pub fn insert<T: Any + Send + Sync + Clone>(&mut self, part: T) {
        self.0.insert(TypeId::of::<T>(), Box::new(part));
    }

    pub fn with<T: Any + Send + Sync + Clone>(mut self, part: T) -> Self {
        self.insert(part);
        self
    }

    /// The value of type `T`. Start-up puts every capability's parts in before anything
    /// runs, so a missing one is a wiring mistake: it panics with the type's name on the
    /// first use, which every test of that capability reaches.
    pub fn get<T: Any>(&self) -> &T {
        self.0
            .get(&TypeId::of::<T>())
            .and_then(|p| p.as_ref().as_any().downcast_ref())
            .unwrap_or_else(|| missing::<T>())
    }

    pub fn get_mut<T: Any>(&mut self) -> &mut T {
        self.0
            .get_mut(&TypeId::of::<T>())
            .and_then(|p| p.as_mut().as_any_mut().downcast_mut())
            .unwrap_or_else(|| missing::<T>())
    }
}

fn missing<T>() -> ! {
    panic!("{} was not composed in at start-up (see server/src/compose.rs)", std::any::type_name::<T>())
}

impl Clone for Parts {
    fn clone(&self) -> Self {
        Parts(self.0.iter().map(|(id, part)| (*id, part.as_ref().clone_part())).collect())
    }
}

impl std::fmt::Debug for Parts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.values().map(|p| p.as_ref().type_name())).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct Knob(u32);

    #[test]
    fn parts_are_found_by_type_and_cloned_deeply() {
        let mut parts = Parts::default().with(Knob(1)).with(String::from("x"));
        assert_eq!(parts.get::<Knob>(), &Knob(1));
        let copy = parts.clone();
        parts.get_mut::<Knob>().0 = 2;
        assert_eq!((parts.get::<Knob>(), copy.get::<Knob>()), (&Knob(2), &Knob(1)), "a clone is its own copy");
        assert_eq!(copy.get::<String>(), "x");
        assert!(format!("{copy:?}").contains("Knob"));
    }

    #[test]
    #[should_panic(expected = "was not composed in")]
    fn a_missing_part_names_its_type() {
        Parts::default().get::<Knob>();
    }
}
