# lab1-realmode's make fragment: the student's file(s) as MAKEVAR:file (the grader sets MAKEVAR to a student's copy),
# and its C guests as GUESTDIR:BITS (guest-kernels/GUESTDIR/*.c).
LABS += lab1-realmode
lab1-realmode_PARTS := LAB1_SRC:lab1_realmode.c
