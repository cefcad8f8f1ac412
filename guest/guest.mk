# Guests: owned by guest/. Appends build/guest/NAME.elf to GUEST_ELFS.
