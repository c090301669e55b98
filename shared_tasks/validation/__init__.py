"""What a valid dataset is, and the streaming checks that prove a file is one."""
