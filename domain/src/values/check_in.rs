//! How and whether a member checks in between sessions.

text_enum! {
    /// How a check-in is made.
    #[derive(Default)]
    pub enum CheckInChannel ("check-in channel") {
        /// A phone call.
        Call => "call",
        /// The mobile app.
        #[default]
        App => "app",
        /// In person at the clinic.
        InPerson => "in_person",
    }
}

text_enum! {
    /// Where a scheduled check-in is.
    pub enum CheckInStatus ("check-in status") {
        /// Scheduled, not yet completed or missed.
        Scheduled => "scheduled",
        /// The member checked in.
        Completed => "completed",
        /// The due time passed without a check-in.
        Missed => "missed",
    }
}
