# zsh -f zsh_complete.zsh COMPLETIONS_DIR BIN_DIR LINE: types LINE and a tab into an interactive
# zsh (a pseudo-terminal, zpty) whose fpath holds the completion, then prints the line as the
# completion left it, between @@ (tests/cli/docs.sh). BIN_DIR holds the portmatrix to run.
zmodload zsh/zpty zsh/datetime
dir=$1 bin=$2 line=$3 out="" chunk=""
wait_for() { # PATTERN: reads until the output matches, 30 s at most
  local t0=$EPOCHREALTIME
  until [[ $out == *$~1* ]]; do
    (( EPOCHREALTIME - t0 < 30 )) || { print -r -- "timeout waiting for $1; got: ${out[-300,-1]}"; zpty -d pm; exit 1; }
    zpty -r -t pm chunk && out+=$chunk || sleep 0.05
  done
}
zpty -b pm "PATH=${(q)bin}:\$PATH TERM=dumb zsh -f -i"
zpty -w pm "PS1='> '; fpath=(${(q)dir} \$fpath); autoload -U compinit; compinit -u -D; unsetopt beep; show() { print -r -- \"@@\$BUFFER@@\"; zle accept-line; }; zle -N show; bindkey '^X' show; print READY\$((6*7))"
wait_for 'READY42'
zpty -n -w pm "$line"$'\t\C-x'
wait_for '@@portmatrix*@@'
zpty -d pm
print -r -- "$out" | grep -ao '@@portmatrix[^@]*@@' | tail -1
