-- A floor, not a write rule: an EVALSHA that carries versioned_write.lua's ARGV and runs no command.
return 1
