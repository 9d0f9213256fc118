//! Fixture: not a job. It imports an interface the runner does not provide and exports a
//! `run` of the wrong type, for `tgrun check` to explain.

wit_bindgen::generate!({
    inline: r#"
        package acme:gadgets;

        interface gadget {
            spin: func(turns: u32) -> u32;
        }

        world not-a-job {
            import gadget;
            export run: func(turns: u32) -> u32;
        }
    "#,
});

struct NotAJob;

impl Guest for NotAJob {
    fn run(turns: u32) -> u32 {
        acme::gadgets::gadget::spin(turns)
    }
}

export!(NotAJob);
