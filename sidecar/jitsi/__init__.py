"""What Jitsi and Prosody see and answer: tokens, public keys, room size,
bridge statistics, app links."""
