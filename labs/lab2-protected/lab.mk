# lab2-protected's make fragment: the student's file(s) as MAKEVAR:file (the grader sets MAKEVAR to a student's copy),
# and its C guests as GUESTDIR:BITS (guest-kernels/GUESTDIR/*.c).
LABS += lab2-protected
lab2-protected_PARTS := LAB2_SRC:lab2_protected.c
lab2-protected_GUESTS := lab2:32
