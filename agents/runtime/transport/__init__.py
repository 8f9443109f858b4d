"""What travels between roles: the trajectory schema, channels and parameter stores."""
